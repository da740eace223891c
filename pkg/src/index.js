// chat-sdk entry point: the wasm-bindgen output (./chat_sdk.js) plus a one-time init.
import wasmInit, { ChatClient } from "./chat_sdk.js";

let ready;

/**
 * Loads the WebAssembly module, once. Call it (and await it) before `new ChatClient(...)`,
 * in the browser only: inside `useEffect` in a Next.js client component.
 */
export function init(input) {
  if (!ready) {
    ready = wasmInit(input === undefined ? undefined : { module_or_path: input }).then(() => undefined);
  }
  return ready;
}

export { ChatClient };
export default init;
