// One connection to the chat server: the browser's side of the wasm core (client-wasm/src/web).
// The core is the session state machine, sans IO; this class does its IO: the WebSocket, the one
// armed setTimeout, the app's getToken, the online/offline events, and turns the core's events
// (JSON text) into promise settlements and listener calls. After every input it drains the core
// (pump): actions, frames to write, events, then re-arms the timer.
import { Core, errorName } from "./chat_sdk.js";
import type { Method } from "./tabs.js";
import {
  type ChatError,
  type ConnectionEventMap,
  type ConnectionOptions,
  type Cursor,
  type HistoryOptions,
  type Message,
  type Status,
  type UserRef,
  type WireError,
  chatError,
} from "./types.js";

type Settle = [resolve: (value: never) => void, reject: (error: ChatError) => void];
type Listener = (payload: never) => void;
/** An event of the core, as its JSON says (client-wasm/src/json.rs). */
type CoreEvent =
  | { t: "sent"; message: Message }
  | { t: "sendFailed"; id: string; error: WireError }
  | { t: "response"; req: number; value: unknown }
  | { t: "requestFailed"; req: number; error: WireError }
  | ({ t: keyof ConnectionEventMap } & Record<string, unknown>);

/** The core's request kinds, in its order (`request` in client-wasm/src/web/mod.rs). */
export const KINDS: readonly Method[] = [
  "history",
  "conversations",
  "markRead",
  "setTyping",
  "watchPresence",
  "block",
  "blocks",
  "report",
  "editMessage",
  "deleteMessage",
  "superviseConversations",
  "superviseRevisions",
  "superviseHistory",
];

/** The request kind that is a send (`SEND` in the wasm core). */
const SEND = 13;

/** The statuses in the core's order (`Core::status`). */
const STATUSES: readonly Status[] = ["idle", "connecting", "open", "reconnecting", "unauthorized", "closed", "refused"];

/** The inputs of `Core.input` that carry the time and at most one number (client-wasm/src/web/mod.rs). */
const enum Input {
  Connect = 0,
  Close = 1,
  Opened = 2,
  Closed = 3,
  Timeout = 4,
  Online = 5,
  Offline = 6,
  Resume = 7,
}

/** The protocol's `client_closed`: what a call on a freed (or closed) client is refused with. */
export const CLIENT_CLOSED = 62;

/** What a refusal at once says, where more than its code name helps. */
const SAYS: Record<number, string> = {
  23: "a message id is a UUID string, and a cursor is { at: number, id: string }",
  24: 'a user is { role: "teacher" | "student", id: number }',
};

/** A refusal of the core's (or of the server's, with its words) as a ChatError. */
export function refusal(code: number, message?: string): ChatError {
  const name = errorName(code);
  const codeName = name.replace("!", "");
  return chatError({ code, codeName, retryable: name !== codeName, message: message ?? SAYS[code] ?? codeName });
}

/**
 * The WebSocket endpoint for the app's server URL: `http://host:4000` (the guide's
 * NEXT_PUBLIC_SOCKET_URL) is `ws://host:4000/ws`, `https://` is `wss://`, a path prefix is kept
 * (`https://school.example/chat` is `wss://school.example/chat/ws`), and a `ws(s)://` URL is used
 * as written. The native client's `websocket_url` (client-wasm/src/url.rs) says the same in Rust;
 * a TypeError says what is wrong with any other.
 */
export function websocketUrl(url: string): string {
  url = url.trim();
  if (/^wss?:\/\//.test(url)) return url;
  const parts = /^http(s?):\/\/([^?#]*)/.exec(url);
  if (!parts) throw new TypeError("the chat server URL must start with http://, https://, ws:// or wss://");
  const rest = parts[2].replace(/\/+$/, "");
  if (!rest || rest.startsWith("/")) throw new TypeError("the chat server URL has no host");
  return `ws${parts[1]}://${rest}${rest.endsWith("/ws") ? "" : "/ws"}`;
}

/**
 * Users as the core takes them: 8 bytes each, role then id as little-endian 32-bit integers
 * (role 0 teacher, 1 student, -1 not a user).
 */
function pairs(users: UserRef[]): Uint8Array {
  const view = new DataView(new ArrayBuffer(8 * users.length));
  users.forEach((u, k) => {
    const ok = Number.isInteger(u?.id) && u.id >= -0x80000000 && u.id <= 0x7fffffff;
    view.setInt32(8 * k, ok ? ["teacher", "student"].indexOf(u.role) : -1, true);
    view.setInt32(8 * k + 4, ok ? u.id : 0, true);
  });
  return new Uint8Array(view.buffer);
}

const encoder = new TextEncoder();

/** Text for the core, as UTF-8 bytes (see `utf8` in the core). */
function utf8(text: string | undefined): Uint8Array | undefined {
  return text === undefined ? undefined : encoder.encode(text);
}

/** A cursor's parts: its id ("" if it has none: a refusal) and time; no id for no cursor. */
function parts(cursor: Cursor | null | undefined): [string | undefined, number] {
  if (cursor == null) return [undefined, 0];
  return [typeof cursor.id === "string" ? cursor.id : "", Number(cursor.at) || 0];
}

export class Connection {
  readonly #core: Core;
  readonly #url: string;
  readonly #getToken: () => Promise<string> | string;
  #ws: WebSocket | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #busy = false;
  #again = false;
  /** After `free()`: the core is gone; late callbacks (a token arriving) do nothing, calls reject. */
  #freed = false;
  readonly #sends = new Map<string, Settle[]>();
  readonly #requests = new Map<number, Settle>();
  readonly #onEvent: (type: keyof ConnectionEventMap, payload: unknown) => void;
  readonly #network = (e: Event) => this.#input(() => this.#core.input(Date.now(), e.type === "online" ? Input.Online : Input.Offline, 0));

  /** Throws a TypeError for options of the wrong shape. */
  /** `onEvent` hears every event for the app (not the answers to calls), after the core is at rest. */
  constructor(options: ConnectionOptions, onEvent: (type: keyof ConnectionEventMap, payload: unknown) => void) {
    this.#onEvent = onEvent;
    const url = websocketUrl(String(options?.url ?? ""));
    if (typeof options.getToken !== "function") {
      throw new TypeError("options.getToken must be a function returning a token (or a promise of one)");
    }
    this.#url = url;
    this.#getToken = options.getToken;
    const seed = crypto.getRandomValues(new Uint32Array(2));
    this.#core = new Core(seed[0], seed[1] ^ Date.now());
    globalThis.addEventListener?.("online", this.#network);
    globalThis.addEventListener?.("offline", this.#network);
  }

  get status(): Status {
    return STATUSES[this.#core.status()];
  }

  /** Who the server says this client is, once connected. */
  get user(): UserRef | undefined {
    // 2 * id + role (0 teacher, 1 student), or NaN.
    const n = this.#core.user();
    return Number.isNaN(n) ? undefined : { role: n & 1 ? "student" : "teacher", id: Math.floor(n / 2) };
  }

  connect(): void {
    this.#input(() => this.#core.input(Date.now(), Input.Connect, 0));
  }

  close(): void {
    this.#input(() => this.#core.input(Date.now(), Input.Close, 0));
  }

  /** Releases the core and every browser hook; after `close()`. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    clearTimeout(this.#timer);
    globalThis.removeEventListener?.("online", this.#network);
    globalThis.removeEventListener?.("offline", this.#network);
    this.#drop();
    this.#core.free();
  }

  resumeFrom(position: number): void {
    this.#core.input(Date.now(), Input.Resume, position);
  }

  newMessageId(): string {
    return this.#core.newMessageId(Date.now());
  }

  /** Queues a send with id `id`; resolves with the stored message once the server committed it. */
  send(to: UserRef, content: string, id: string): Promise<Message> {
    return new Promise((resolve, reject) => {
      let code = this.#freed ? -CLIENT_CLOSED : 0;
      this.#input(() => {
        code = this.#core.request(Date.now(), SEND, pairs([to]), utf8(String(id)), 0, utf8(String(content)), 0);
        // The same id may be queued twice (restored after a reload): every caller hears.
        if (code === 0) this.#sends.set(id, [...(this.#sends.get(id) ?? []), [resolve as never, reject]]);
      });
      if (code !== 0) reject(refusal(-code));
    });
  }

  /** Any other call: resolves with the server's answer. */
  call(method: Method, args: unknown[]): Promise<unknown> {
    let users: UserRef[] = [];
    let cursor: Cursor | null | undefined;
    let text: string | undefined;
    let id: string | undefined;
    let n = 0;
    const a = args as [never, never, never];
    switch (method) {
      case "history":
      case "superviseHistory": {
        const history = method === "history";
        users = history ? [a[0]] : [a[0], a[1]];
        const options = (history ? a[1] : a[2]) as HistoryOptions | null | undefined;
        cursor = options?.before;
        const limit = Number(options?.limit ?? 50);
        n = Number.isNaN(limit) ? 50 : Math.min(Math.max(Math.trunc(limit), 0), 65_535);
        break;
      }
      case "markRead":
        users = [a[0]];
        cursor = a[1] ?? { at: 0, id: "" };
        break;
      case "setTyping":
      case "block":
        users = [a[0]];
        n = a[1] ? 1 : 0;
        break;
      case "watchPresence":
        users = Array.from(a[0] as UserRef[]);
        break;
      case "superviseConversations":
        users = [a[0]];
        break;
      case "superviseRevisions":
        users = [a[0]];
        id = String(a[1]);
        break;
      default:
        // report, editMessage, deleteMessage: the message id, then the text.
        id = String(a[0]);
        text = a[1] === undefined ? undefined : String(a[1]);
    }
    const [cursorId, at] = parts(cursor);
    return new Promise((resolve, reject) => {
      let req = this.#freed ? -CLIENT_CLOSED : 0;
      this.#input(() => {
        req = this.#core.request(Date.now(), KINDS.indexOf(method), pairs(users), utf8(id ?? cursorId), at, utf8(text), n);
        if (req >= 0) this.#requests.set(req, [resolve as never, reject]);
      });
      if (req < 0) reject(refusal(-req));
    });
  }

  /** Runs one input of the core, then drains it (nothing once freed). */
  #input(f: () => void): void {
    if (this.#freed) return;
    f();
    this.#pump();
  }

  #pump(): void {
    // An input from inside the loop (a socket closing as it is written to) drains in the loop.
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    const calls: [Listener, unknown][] = [];
    try {
      do {
        this.#again = false;
        for (let action; (action = this.#core.action()) >= 0; ) {
          if (action === 0) this.#open();
          else if (action < 1000) this.#fetchToken(action - 1);
          else this.#drop(action - 1000);
        }
        for (let bytes; (bytes = this.#core.transmit()); ) {
          try {
            this.#ws?.send(bytes);
          } catch {
            this.#drop();
            this.#core.input(Date.now(), Input.Closed, -1);
            this.#again = true;
          }
        }
        for (let json; (json = this.#core.event()); ) {
          this.#again = true;
          this.#route(JSON.parse(json) as CoreEvent, calls);
        }
      } while (this.#again);
    } finally {
      this.#busy = false;
    }
    clearTimeout(this.#timer);
    const at = this.#core.deadline();
    if (at >= 0) {
      this.#timer = setTimeout(() => this.#input(() => this.#core.input(Date.now(), Input.Timeout, 0)), Math.min(Math.max(at - Date.now(), 0), 0x7fffffff));
    }
    // The app's code runs last, with the core at rest: a handler may call the client again.
    for (const [f, payload] of calls) {
      try {
        f(payload as never);
      } catch (error) {
        console.error(error);
      }
    }
  }

  /** One event of the core: the promises it settles and the listeners it calls, queued in `calls`. */
  #route(event: CoreEvent, calls: [Listener, unknown][]): void {
    switch (event.t) {
      case "sent":
      case "sendFailed": {
        const id = event.t === "sent" ? (event.message as Message).id : (event.id as string);
        for (const [resolve, reject] of this.#sends.get(id) ?? []) {
          if (event.t === "sent") calls.push([resolve as Listener, event.message]);
          else calls.push([reject as Listener, chatError(event.error as WireError)]);
        }
        this.#sends.delete(id);
        return;
      }
      case "response":
      case "requestFailed": {
        const waiting = this.#requests.get(event.req as number);
        this.#requests.delete(event.req as number);
        if (!waiting) return;
        if (event.t === "response") calls.push([waiting[0] as Listener, event.value]);
        else calls.push([waiting[1] as Listener, chatError(event.error as WireError)]);
        return;
      }
      default: {
        const { t, ...payload } = event;
        calls.push([(p: unknown) => this.#onEvent(t, p), payload]);
      }
    }
  }

  #open(): void {
    this.#drop();
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.#url);
    } catch {
      this.#core.input(Date.now(), Input.Closed, -1);
      this.#again = true;
      return;
    }
    ws.binaryType = "arraybuffer";
    // Events of a socket this connection has since let go are ignored.
    const mine = (f: () => void) => () => {
      if (this.#ws === ws) this.#input(f);
    };
    ws.onopen = mine(() => this.#core.input(Date.now(), Input.Opened, 0));
    ws.onmessage = (e: MessageEvent) => {
      if (e.data instanceof ArrayBuffer) mine(() => this.#core.frame(Date.now(), new Uint8Array(e.data)))();
    };
    ws.onclose = (e: CloseEvent) =>
      mine(() => {
        this.#ws = null;
        this.#core.input(Date.now(), Input.Closed, e.code);
      })();
    this.#ws = ws;
  }

  /** Lets the socket go, closing it (with `code`, if given). */
  #drop(code?: number): void {
    const ws = this.#ws;
    this.#ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        // Closing an already closed socket is harmless; a code the browser refuses is not worth an error.
        ws.close(code);
      } catch {
        ws.close();
      }
    }
  }

  #fetchToken(purpose: number): void {
    const answer = (token?: unknown) =>
      this.#input(() => this.#core.token(Date.now(), purpose, typeof token === "string" ? utf8(token) : undefined));
    try {
      Promise.resolve(this.#getToken()).then(answer, () => answer());
    } catch {
      // A getToken that throws at once.
      this.#core.token(Date.now(), purpose, undefined);
      this.#again = true;
    }
  }
}
