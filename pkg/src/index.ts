// chat-sdk entry point: the wasm-bindgen output (./chat_sdk.js) plus a one-time init.
import wasmInit, { ChatClient } from "./chat_sdk.js";

export type {
  ChatClientOptions,
  ChatError,
  ChatEventMap,
  Conversation,
  Cursor,
  HistoryOptions,
  HistoryPage,
  Message,
  Status,
  UserRef,
} from "./chat_sdk.js";
export { ChatClient };

/** Where the WebAssembly module comes from, if not from beside this file. */
export type InitInput = string | URL | Request | Response | BufferSource | WebAssembly.Module;

let ready: Promise<void> | undefined;

/**
 * Loads the WebAssembly module, once. Call it (and await it) before `new ChatClient(...)`,
 * in the browser only: inside `useEffect` in a Next.js client component (or use
 * `chat-sdk/react`, which does it for you). `input` overrides where the .wasm file is fetched from.
 */
export function init(input?: InitInput): Promise<void> {
  ready ??= wasmInit(input === undefined ? undefined : { module_or_path: input }).then(() => undefined);
  return ready;
}

export default init;
