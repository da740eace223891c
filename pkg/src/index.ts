// chat-sdk entry point: the wasm-bindgen client (./chat_sdk.js) behind a class that keeps
// every send not yet acknowledged in IndexedDB, plus a one-time init.
import wasmInit, { ChatClient as WasmClient } from "./chat_sdk.js";
import type {
  ChatClientOptions as WasmOptions,
  ChatError,
  ChatEventMap as WasmEventMap,
  Conversation,
  Cursor,
  HistoryOptions,
  HistoryPage,
  Message,
  Status,
  UserRef,
} from "./chat_sdk.js";
import { MemoryOutbox, type Outbox, type PendingSend, openOutbox, clearOutbox } from "./outbox.js";

export type { ChatError, Conversation, Cursor, HistoryOptions, HistoryPage, Message, PendingSend, Status, UserRef };

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

export interface ChatClientOptions extends WasmOptions {
  /**
   * The signed-in user. With it, every send not yet acknowledged is kept in IndexedDB for this
   * user and sent again by the next client of the same user (after a reload, in another tab,
   * after a browser restart); without it, unacknowledged sends live in memory only.
   */
  user?: UserRef;
}

/** Where unacknowledged sends are kept: IndexedDB, or memory (no `user` given, or no IndexedDB). */
export type OutboxStorage = "indexeddb" | "memory";

export interface ChatEventMap extends WasmEventMap {
  /** Sends a previous client of this user left unacknowledged, restored at start and being sent again. */
  pending: { sends: PendingSend[] };
  /** A send (new or restored) was stored by the server. */
  sent: { message: Message };
  /** A send (new or restored) was refused for good; it is removed from storage. */
  failed: { id: string; to: UserRef; content: string; error: ChatError };
}

type Handler<K extends keyof ChatEventMap> = (event: ChatEventMap[K]) => void;
type LocalEvent = "pending" | "sent" | "failed";
const LOCAL_EVENTS: readonly string[] = ["pending", "sent", "failed"];

/** Refusals that end a send here but not for good: the next client of this user sends it. */
const KEEP_ON: readonly string[] = ["client_closed", "unauthorized", "token_expired", "unsupported_version"];

const userKey = (user: UserRef) => `${user.role}:${user.id}`;

/** The chat client. See the package README for the API and a Next.js example. */
export class ChatClient {
  readonly #inner: WasmClient;
  readonly #user: UserRef | undefined;
  #outbox: Outbox;
  #storage: OutboxStorage;
  /** Sends go to the core in the order they were made, each after it is stored. */
  #chain: Promise<void>;
  readonly #pending = new Map<string, PendingSend>();
  readonly #listeners = new Map<LocalEvent, Set<(event: never) => void>>();

  /** Creates a client; call `connect()` to start. Throws a TypeError for options of the wrong shape. */
  constructor(options: ChatClientOptions) {
    this.#inner = new WasmClient({ url: options.url, getToken: options.getToken });
    this.#user = options.user;
    this.#outbox = new MemoryOutbox();
    this.#storage = "memory";
    const user = options.user;
    this.#chain = user ? this.#restore(user) : Promise.resolve();
  }

  async #restore(user: UserRef): Promise<void> {
    const outbox = await openOutbox(userKey(user));
    if (!outbox) return;
    this.#outbox = outbox;
    this.#storage = "indexeddb";
    const left = await outbox.list().catch(() => [] as PendingSend[]);
    if (left.length === 0) return;
    this.#emit("pending", { sends: left });
    for (const send of left) this.#deliver(send).catch(() => {});
  }

  /** Where unacknowledged sends are kept (settles once the stored ones are restored). */
  get storage(): OutboxStorage {
    return this.#storage;
  }

  /** Sends made (or restored) and not yet acknowledged, oldest first. */
  get pendingSends(): PendingSend[] {
    return [...this.#pending.values()];
  }

  /** Connects (and keeps reconnecting until `close()` or an `unauthorized` refusal). */
  connect(): void {
    this.#inner.connect();
  }

  /** Closes the connection for good; pending calls reject with `client_closed` (sends stay stored). */
  close(): void {
    this.#inner.close();
  }

  /** Frees the WebAssembly side; call after `close()` when the client is no longer used. */
  free(): void {
    this.#inner.free();
  }

  /** The connection status. */
  get status(): Status {
    return this.#inner.status;
  }

  /** Who the server says this client is, once connected. */
  get user(): UserRef | undefined {
    return this.#inner.user;
  }

  /**
   * Sends a message. It is stored in the outbox (IndexedDB when `user` was given) before it
   * goes out; resolves with the stored message once the server committed it; queued while
   * offline; rejects only on a permanent error.
   */
  send(to: UserRef, content: string): Promise<Message> {
    const send: PendingSend = { id: this.#inner.newMessageId(), to, content, queuedAt: Date.now() };
    return this.#deliver(send, true);
  }

  #deliver(send: PendingSend, store = false): Promise<Message> {
    this.#pending.set(send.id, send);
    const queued = this.#chain.then(async () => {
      if (store) await this.#outbox.put(send).catch(() => {});
      return this.#inner.send(send.to, send.content, send.id);
    });
    this.#chain = queued.then(
      () => undefined,
      () => undefined,
    );
    // Settled: forget it (but keep it stored when the next client should still send it).
    return queued.then(
      (message) => {
        this.#settle(send, true);
        this.#emit("sent", { message });
        return message;
      },
      (error: ChatError) => {
        const keep = KEEP_ON.includes(error?.codeName);
        this.#settle(send, !keep);
        if (!keep) this.#emit("failed", { id: send.id, to: send.to, content: send.content, error });
        throw error;
      },
    );
  }

  #settle(send: PendingSend, remove: boolean): void {
    this.#pending.delete(send.id);
    if (remove) this.#outbox.delete(send.id).catch(() => {});
  }

  /** A page of the conversation with `peer`, newest first. */
  history(peer: UserRef, options?: HistoryOptions | null): Promise<HistoryPage> {
    return this.#inner.history(peer, options);
  }

  /** Every conversation of this user, most recent first, with unread counts. */
  conversations(): Promise<Conversation[]> {
    return this.#inner.conversations();
  }

  /** Marks `peer`'s messages up to `upTo` as read; resolves with how many changed. */
  markRead(peer: UserRef, upTo: Cursor): Promise<number> {
    return this.#inner.markRead(peer, upTo);
  }

  /** Tells `peer` this user started or stopped typing. */
  setTyping(peer: UserRef, on: boolean): Promise<void> {
    return this.#inner.setTyping(peer, on);
  }

  /** Follows the presence of `users` (replacing the previous list); resolves with those online. */
  watchPresence(users: UserRef[]): Promise<UserRef[]> {
    return this.#inner.watchPresence(users);
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ChatEventMap>(event: K, handler: Handler<K>): () => void {
    if (!LOCAL_EVENTS.includes(event)) {
      return this.#inner.on(event as keyof WasmEventMap, handler as (event: WasmEventMap[keyof WasmEventMap]) => void);
    }
    const local = event as LocalEvent;
    const set = this.#listeners.get(local) ?? new Set();
    this.#listeners.set(local, set);
    const fn = handler as (event: never) => void;
    set.add(fn);
    return () => set.delete(fn);
  }

  #emit<K extends LocalEvent>(event: K, payload: ChatEventMap[K]): void {
    for (const handler of this.#listeners.get(event) ?? []) {
      try {
        (handler as Handler<K>)(payload);
      } catch (error) {
        console.error(error);
      }
    }
  }

  /**
   * Signs out on a shared computer: closes the client and removes everything this user left in
   * the browser (unsent messages included). Resolves once the storage is cleared.
   */
  async signOut(): Promise<void> {
    this.close();
    await this.#chain;
    if (this.#user) await ChatClient.clearStorage(this.#user);
  }

  /** Removes everything chat-sdk stored in this browser for `user` (call it on sign-out). */
  static clearStorage(user: UserRef): Promise<void> {
    return clearOutbox(userKey(user));
  }
}
