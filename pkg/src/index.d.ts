export * from "./chat_sdk.js";

/**
 * Loads the WebAssembly module, once. Call it (and await it) before `new ChatClient(...)`,
 * in the browser only: inside `useEffect` in a Next.js client component.
 * `input` overrides where the .wasm file is fetched from.
 */
export declare function init(input?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;
export default init;
