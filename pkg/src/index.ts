// chat-sdk entry point: a connection (./connection.ts, around the wasm core) behind a class that
// keeps every send not yet acknowledged in IndexedDB and shares one connection between the tabs
// of a user, plus a one-time init.
import * as glue from "./chat_sdk.js";
import { CLIENT_CLOSED, Connection, KINDS, refusal } from "./connection.js";
import { MemoryOutbox, type Outbox, type PendingSend, openOutbox, clearOutbox } from "./outbox.js";
import { type Method, TabGroup, canShare } from "./tabs.js";
import {
  type ChatError,
  type ConnectionEventMap,
  type ConnectionOptions,
  type Conversation,
  type Cursor,
  type HistoryOptions,
  type HistoryPage,
  type Message,
  type Revision,
  type Status,
  type UserRef,
} from "./types.js";

export type {
  ChatError,
  Conversation,
  Cursor,
  HistoryOptions,
  HistoryPage,
  Message,
  PendingSend,
  Revision,
  Status,
  UserRef,
};

/** Where the WebAssembly module comes from, if not from beside this file. */
export type InitInput = string | URL | Request | Response | BufferSource | WebAssembly.Module;

let ready: Promise<void> | undefined;

/**
 * Loads the WebAssembly module, once. Call it (and await it) before `new ChatClient(...)`,
 * in the browser only: inside `useEffect` in a Next.js client component (or use
 * `chat-sdk/react`, which does it for you). `input` overrides where the .wasm file is fetched from.
 */
export function init(input?: InitInput): Promise<void> {
  ready ??= load(input ?? new URL("chat_sdk_bg.wasm", import.meta.url)).catch((error: unknown) => {
    ready = undefined;
    throw error;
  });
  return ready;
}

// The module is loaded here, not by a loader of wasm-bindgen's (its `--target web` loader, with
// `instantiateStreaming` fallbacks and deprecation warnings, cost 0.2 KB gzip of the bundle):
// fetched, compiled off the main thread, instantiated with the glue as its imports.
async function load(input: InitInput): Promise<void> {
  let source = input;
  if (typeof source === "string" || source instanceof URL || source instanceof Request) source = await fetch(source);
  if (source instanceof Response) {
    if (!source.ok) throw new Error(`chat-sdk: could not fetch its WebAssembly module: ${source.status} from ${source.url}`);
    source = await source.arrayBuffer();
  }
  const module = source instanceof WebAssembly.Module ? source : await WebAssembly.compile(source);
  const instance = await WebAssembly.instantiate(module, { "./chat_sdk_bg.js": glue as unknown as WebAssembly.ModuleImports });
  glue.__wbg_set_wasm(instance.exports);
  // wasm-bindgen exports a start function only when the module has something to set up.
  (instance.exports.__wbindgen_start as (() => void) | undefined)?.();
}

export default init;

export interface ChatClientOptions extends ConnectionOptions {
  /**
   * The signed-in user. With it, every send not yet acknowledged is kept in IndexedDB for this
   * user and sent again by the next client of the same user (after a reload, in another tab,
   * after a browser restart); without it, unacknowledged sends live in memory only.
   */
  user?: UserRef;
}

/** Where unacknowledged sends are kept: IndexedDB, or memory (no `user` given, or no IndexedDB). */
export type OutboxStorage = "indexeddb" | "memory";

/**
 * How this tab reaches the server: `leader` holds the one connection of this user in this browser,
 * `follower` goes through the leader's (Web Locks elect it; BroadcastChannel carries calls and
 * events), `single` has its own (no `user` given, or the browser lacks Web Locks or
 * BroadcastChannel), `idle` until `connect()`.
 */
export type TabRole = "idle" | "single" | "leader" | "follower";

export interface ChatEventMap extends ConnectionEventMap {
  /** Sends a previous client of this user left unacknowledged, restored at start and being sent again. */
  pending: { sends: PendingSend[] };
  /** A send (new or restored) was stored by the server. */
  sent: { message: Message };
  /** A send (new or restored) was refused for good; it is removed from storage. */
  failed: { id: string; to: UserRef; content: string; error: ChatError };
}

type Handler<K extends keyof ChatEventMap> = (event: ChatEventMap[K]) => void;
type AnyHandler = (event: never) => void;

/**
 * Refusals that end a send here but not for good: the next client of this user sends it. By
 * their protocol codes (stable numbers): client_closed 62, unauthorized 10, token_expired 11,
 * unsupported_version 4, and origin_not_allowed 14 (a setting to fix, after which the next
 * client sends it).
 */
const KEEP_ON: readonly number[] = [62, 10, 11, 4, 14];
/** Message ids remembered per tab to report each once, whichever tab held the connection. */
const SEEN_IDS = 5_000;

/** A stable string for a user, e.g. as a React key or a record key: `"teacher:1"`. */
export function userKey(user: UserRef): string {
  return `${user.role}:${user.id}`;
}

/** The chat client. See the package README for the API and a Next.js example. */
export class ChatClient {
  readonly #options: ChatClientOptions;
  readonly #user: UserRef | undefined;
  /** The wasm client: this tab's own connection (single or leader). */
  #inner: Connection | null = null;
  #role: TabRole = "idle";
  /** This tab among the user's tabs (with a `user`, where the browser can share). */
  #group: TabGroup | null = null;
  #closed = false;
  #status: Status = "idle";
  /** The server's sentence for a final refusal (`refused`), else null. */
  #reason: string | null = null;
  #who: UserRef | undefined;
  #outbox: Outbox = new MemoryOutbox();
  #storage: OutboxStorage = "memory";
  #restored: Promise<void> = Promise.resolve();
  /** Sends go to the core in the order they were made, each after it is stored. */
  #chain: Promise<void> = Promise.resolve();
  readonly #pending = new Map<string, PendingSend>();
  readonly #listeners = new Map<string, Set<AnyHandler>>();
  readonly #seen = new Set<string>();
  /** The newest log position a message event carried: where a tab taking over resumes. */
  #position = 0;

  /** Creates a client; call `connect()` to start. Throws a TypeError for options of the wrong shape. */
  constructor(options: ChatClientOptions) {
    this.#options = options;
    this.#user = options.user;
    // Checks the options now (a TypeError for a bad url or getToken), and keeps the client for
    // a tab that ends up holding the connection itself.
    this.#inner = this.#newInner();
    if (this.#user) {
      const user = this.#user;
      this.#restored = openOutbox(userKey(user)).then((outbox) => {
        if (!outbox) return;
        this.#outbox = outbox;
        this.#storage = "indexeddb";
      });
    }
  }

  #newInner(): Connection {
    return new Connection({ url: this.#options.url, getToken: this.#options.getToken }, (event, payload) =>
      this.#fromServer(event, payload as never),
    );
  }

  /** An event of this tab's own connection: for this tab, and for the follower tabs. */
  #fromServer<K extends keyof ChatEventMap>(event: K, payload: ChatEventMap[K]): void {
    if (event === "status" && this.#inner) this.#who = this.#inner.user ?? this.#who;
    this.#group?.publish(event, payload, this.#who);
    this.#dispatch(event, payload);
  }

  #dispatch<K extends keyof ChatEventMap>(event: K, payload: ChatEventMap[K]): void {
    if (event === "status") {
      const { status, reason } = payload as ChatEventMap["status"];
      this.#status = status;
      this.#reason = reason ?? null;
    }
    if (event === "message") {
      const { message, position } = payload as ChatEventMap["message"];
      this.#position = Math.max(this.#position, position ?? 0);
      if (this.#seen.has(message.id)) return;
      this.#seen.add(message.id);
      if (this.#seen.size > SEEN_IDS) this.#seen.delete(this.#seen.values().next().value as string);
    }
    for (const handler of this.#listeners.get(event) ?? []) {
      try {
        (handler as Handler<K>)(payload);
      } catch (error) {
        console.error(error);
      }
    }
  }

  /** Where unacknowledged sends are kept (settles once storage is open). */
  get storage(): OutboxStorage {
    return this.#storage;
  }

  /** How this tab reaches the server. */
  get tabRole(): TabRole {
    return this.#role;
  }

  /** Sends made (or restored) and not yet acknowledged, oldest first. */
  get pendingSends(): PendingSend[] {
    return [...this.#pending.values()];
  }

  /** The connection status (a follower tab shows the leader's). */
  get status(): Status {
    return this.#role === "single" || this.#role === "leader" ? (this.#inner?.status ?? this.#status) : this.#status;
  }

  /**
   * Why the server refuses this page, in its words, while the status is `refused` (e.g. "this
   * page's origin http://localhost:3100 is not in CHAT_ALLOWED_ORIGINS; ..."); else null.
   */
  get statusReason(): string | null {
    return this.status === "refused" ? this.#reason : null;
  }

  /** Who the server says this client is, once connected. */
  get user(): UserRef | undefined {
    return this.#inner && this.#role !== "follower" ? (this.#inner.user ?? this.#who) : this.#who;
  }

  /**
   * Connects (and keeps reconnecting until `close()` or an `unauthorized` refusal). With a `user`,
   * the tabs of this user share one connection: the first holds it, the others go through it,
   * and when it closes another takes over.
   */
  connect(): void {
    if (this.#role !== "idle" || this.#closed) return;
    if (!this.#user || !canShare()) {
      this.#role = "single";
      void this.#restored.then(() => this.#startOwn(false));
      return;
    }
    this.#role = "follower";
    this.#status = "connecting";
    this.#dispatch("status", { status: "connecting" });
    this.#group = new TabGroup(userKey(this.#user), {
      lead: () => this.#lead(),
      run: (method, args) => this.#run(method, args),
      relayed: (event, payload, who) => {
        if (who) this.#who = who;
        this.#dispatch(event as keyof ChatEventMap, payload as never);
      },
    });
  }

  /** This tab holds the connection now: restore what the user left, catch up, connect. */
  async #lead(): Promise<void> {
    if (this.#closed) return;
    this.#role = "leader";
    await this.#startOwn(this.#position > 0);
  }

  async #startOwn(resume: boolean): Promise<void> {
    await this.#restored;
    const inner = (this.#inner ??= this.#newInner());
    if (resume) inner.resumeFrom(this.#position);
    const left = await this.#outbox.list().catch(() => [] as PendingSend[]);
    const fresh = left.filter((send) => !this.#pending.has(send.id));
    if (fresh.length > 0) {
      this.#fromServer("pending", { sends: fresh });
      for (const send of fresh) this.#deliver(send).catch(() => {});
    }
    inner.connect();
  }

  #run(method: Method, args: unknown[]): Promise<unknown> {
    const inner = this.#inner;
    if (!inner) return Promise.reject(refusal(CLIENT_CLOSED, "not connected"));
    switch (method) {
      case "send": {
        const [to, content, id] = args as [UserRef, string, string];
        // Stored by the tab that made it; this tab's outbox sends it and forgets it on the ack.
        return this.#deliver({ id, to, content, queuedAt: Date.now() });
      }
      default:
        return inner.call(method, args);
    }
  }

  /** A call on the connection: this tab's own, or through the leader tab's. */
  #call<T>(method: Method, args: unknown[]): Promise<T> {
    if (this.#closed) {
      return Promise.reject(refusal(CLIENT_CLOSED, "the client was closed"));
    }
    return (this.#group ? this.#group.call(method, args) : this.#run(method, args)) as Promise<T>;
  }

  /** Closes the connection for good; pending calls reject with `client_closed` (sends stay stored). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inner?.close();
    this.#group?.close(refusal(CLIENT_CLOSED, "the client was closed"));
    if (this.#role === "follower") {
      this.#status = "closed";
      this.#dispatch("status", { status: "closed" });
    }
  }

  /** Frees the WebAssembly side; call after `close()` when the client is no longer used. */
  free(): void {
    this.#inner?.free();
    this.#inner = null;
  }

  /**
   * Sends a message. It is stored in the outbox (IndexedDB when `user` was given) before it
   * goes out; resolves with the stored message once the server committed it; queued while
   * offline; rejects only on a permanent error.
   */
  send(to: UserRef, content: string): Promise<Message> {
    const send: PendingSend = { id: this.#inner?.newMessageId() ?? crypto.randomUUID(), to, content, queuedAt: Date.now() };
    this.#pending.set(send.id, send);
    // Stored by the tab that made it, then sent through whichever tab holds the connection
    // (this one, or the leader): that tab's `#deliver` sends it, and on the ack forgets it and
    // announces `sent` to every tab, this one included. IndexedDB completes the puts in the
    // order they were made, so sends reach the connection in that order.
    return this.#restored
      .then(() => this.#outbox.put(send))
      .catch(() => {})
      .then(() => this.#call<Message>("send", [to, content, send.id]))
      .finally(() => this.#pending.delete(send.id));
  }

  /** Puts a send (stored already) through this tab's own connection; forgotten on the ack. */
  #deliver(send: PendingSend): Promise<Message> {
    this.#pending.set(send.id, send);
    const queued = this.#chain.then(async () => {
      await this.#restored;
      const inner = this.#inner ?? (this.#inner = this.#newInner());
      return inner.send(send.to, send.content, send.id);
    });
    this.#chain = queued.then(
      () => undefined,
      () => undefined,
    );
    return queued.then(
      (message) => {
        this.#settle(send, true);
        this.#fromServer("sent", { message });
        return message;
      },
      (error: ChatError) => {
        const keep = KEEP_ON.includes(error?.code);
        this.#settle(send, !keep);
        if (!keep) this.#fromServer("failed", { id: send.id, to: send.to, content: send.content, error });
        throw error;
      },
    );
  }

  #settle(send: PendingSend, remove: boolean): void {
    this.#pending.delete(send.id);
    if (remove) this.#outbox.delete(send.id).catch(() => {});
  }

  // The core's request kinds but `block` (which `block` and `unblock` below share): each one
  // `#call(name, its arguments)`, so written once (their types and docs are the `ChatClient`
  // interface below the class).
  static {
    for (const method of KINDS) {
      if (method === "block") continue;
      const call = function (this: ChatClient, ...args: unknown[]) {
        return this.#call(method, args);
      };
      Object.defineProperty(ChatClient.prototype, method, { value: call, writable: true, configurable: true });
    }
  }

  /**
   * Blocks `user`: neither of you can then message or type to the other (a teacher's block is a
   * mute). Rejects with `not_allowed` where the school's policy does not let this role block that
   * one (by default a student reports a teacher instead of blocking them).
   */
  block(user: UserRef): Promise<void> {
    return this.#call("block", [user, true]);
  }

  /** Lifts a block this user made. */
  unblock(user: UserRef): Promise<void> {
    return this.#call("block", [user, false]);
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ChatEventMap>(event: K, handler: Handler<K>): () => void {
    const set = this.#listeners.get(event) ?? new Set<AnyHandler>();
    this.#listeners.set(event, set);
    const fn = handler as AnyHandler;
    set.add(fn);
    return () => set.delete(fn);
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

// The calls that go to the server as they are (each one `#call(name, its arguments)`),
// declared here and defined once by the loop in the class's static block.
export interface ChatClient {
  /** A page of the conversation with `peer`, newest first. */
  history(peer: UserRef, options?: HistoryOptions | null): Promise<HistoryPage>;

  /** Every conversation of this user, most recent first, with unread counts. */
  conversations(): Promise<Conversation[]>;

  /** Marks `peer`'s messages up to `upTo` as read; resolves with how many changed. */
  markRead(peer: UserRef, upTo: Cursor): Promise<number>;

  /** Tells `peer` this user started or stopped typing. */
  setTyping(peer: UserRef, on: boolean): Promise<void>;

  /**
   * Follows the presence of `users` (replacing the previous list); resolves with those online.
   * The tabs of a user share one connection, so the last list any of them set is the one followed.
   */
  watchPresence(users: UserRef[]): Promise<UserRef[]>;

  /** The users this user has blocked. */
  blocks(): Promise<UserRef[]>;

  /**
   * Reports a message this user received to the school's staff, with a reason (1 to 1,024 bytes).
   * Resolves once the report is stored; rejects with `unknown_message` for a message not sent to
   * this user.
   */
  report(id: string, reason: string): Promise<void>;

  /**
   * Replaces the text of a message this user sent, within the server's edit window (15 minutes by
   * default); the other user's tabs get a `changed` event. The earlier text is kept for the school's
   * records. Rejects with `not_allowed` past the window, `unknown_message` for another's message.
   */
  editMessage(id: string, content: string): Promise<void>;

  /**
   * Deletes (unsends) a message this user sent, within the edit window: both users then see it as
   * deleted (`content` ""; a `changed` event with `deleted: true`). The school's records keep the text.
   */
  deleteMessage(id: string): Promise<void>;

  /**
   * For a supervisor (a teacher whose chat token carries `supervisor: true`): every conversation of
   * `student`, read-only. The server writes each read to its audit log; anyone else is refused with
   * `not_allowed`.
   */
  superviseConversations(student: UserRef): Promise<Conversation[]>;

  /**
   * For a supervisor: the earlier texts of message `id` of `student`'s (each edit and deletion, with
   * the text it replaced; the newest 32), audited like every supervisor read.
   */
  superviseRevisions(student: UserRef, id: string): Promise<Revision[]>;

  /** For a supervisor: a page of `student`'s conversation with `peer`, newest first (audited). */
  superviseHistory(student: UserRef, peer: UserRef, options?: HistoryOptions | null): Promise<HistoryPage>;
}
