// One connection per browser for each user: the tabs of a user elect a leader with Web Locks
// (the lock is freed when its tab closes or crashes, and the next tab waiting gets it), and
// talk over a BroadcastChannel: followers send their calls to the leader, the leader answers
// and relays every event of its connection. `TabGroup` is that whole protocol behind the one
// call the client makes of any connection, `call(method, args)`; `ChatClient` (index.ts) only
// says what leading means (`TabHost`).
import { type ChatError, type UserRef, type WireError, chatError } from "./types.js";

export type Method =
  | "send"
  | "history"
  | "conversations"
  | "markRead"
  | "setTyping"
  | "watchPresence"
  | "block"
  | "blocks"
  | "report"
  | "editMessage"
  | "deleteMessage"
  | "superviseConversations"
  | "superviseRevisions"
  | "superviseHistory";

export interface CallMessage {
  type: "call";
  id: string;
  method: Method;
  args: unknown[];
}

export type TabMessage =
  | { type: "hello" }
  | { type: "leader" }
  | { type: "event"; event: string; payload: unknown; who?: UserRef }
  | CallMessage
  | { type: "reply"; id: string; value?: unknown; error?: WireError };

/** Whether this browser can share one connection between tabs. */
export function canShare(): boolean {
  return (
    typeof BroadcastChannel !== "undefined" &&
    typeof navigator !== "undefined" &&
    typeof navigator.locks?.request === "function"
  );
}

/** A refusal as plain data, to cross to another tab. */
export function wireError(e: unknown): WireError {
  const err = e as Partial<ChatError> | undefined;
  return { message: String(err?.message ?? e), code: err?.code ?? 0, codeName: err?.codeName ?? "internal", retryable: !!err?.retryable };
}

/** What the tab group needs of the client in this tab. */
export interface TabHost {
  /** This tab was elected: it holds the user's connection from now on (resolves once started). */
  lead(): Promise<void>;
  /** Runs a call on this tab's own connection (this tab leads). */
  run(method: Method, args: unknown[]): Promise<unknown>;
  /** An event of the leader's connection, with who that connection is (this tab follows). */
  relayed(event: string, payload: unknown, who: UserRef | undefined): void;
}

/** This tab in its user's group of tabs: a follower until elected, then the leader. */
export class TabGroup {
  readonly #channel: BroadcastChannel;
  readonly #abort = new AbortController();
  #release: (() => void) | null = null;
  readonly #host: TabHost;
  #leading = false;
  /** The last status this tab published: what a tab that joins later is told. */
  #status: TabMessage | null = null;
  /** This tab's calls waiting for the leader's answer, by call id (sent again to a new leader). */
  readonly #calls = new Map<string, { call: CallMessage; resolve: (v: unknown) => void; reject: (e: ChatError) => void }>();

  constructor(user: string, host: TabHost) {
    this.#host = host;
    const name = `chat-sdk:${user}`;
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (event: MessageEvent<TabMessage>) => this.#receive(event.data);
    this.#post({ type: "hello" });
    // Waits (as a follower) until this tab holds the lock, then leads until it closes.
    navigator.locks
      .request(name, { signal: this.#abort.signal }, async () => {
        await this.#lead();
        await new Promise<void>((resolve) => {
          this.#release = resolve;
        });
      })
      .catch(() => {});
  }

  /** Whether this tab holds the connection. */
  get leading(): boolean {
    return this.#leading;
  }

  /** A call: run here when this tab leads, else sent to the leader (and to the next one, if it goes). */
  call(method: Method, args: unknown[]): Promise<unknown> {
    if (this.#leading) return this.#host.run(method, args);
    return new Promise((resolve, reject) => {
      const call: CallMessage = { type: "call", id: crypto.randomUUID(), method, args };
      this.#calls.set(call.id, { call, resolve, reject });
      this.#post(call);
    });
  }

  /** Relays an event of this tab's connection to the other tabs (this tab leads). */
  publish(event: string, payload: unknown, who: UserRef | undefined): void {
    if (!this.#leading) return;
    const message: TabMessage = { type: "event", event, payload, who };
    if (event === "status") this.#status = message;
    this.#post(message);
  }

  /**
   * Leaves the group: gives up the lock (another tab takes over) or stops waiting for it; calls
   * still waiting reject with `why`.
   */
  close(why: ChatError): void {
    this.#abort.abort();
    this.#release?.();
    this.#channel.close();
    for (const { reject } of this.#calls.values()) reject(why);
    this.#calls.clear();
  }

  async #lead(): Promise<void> {
    this.#leading = true;
    await this.#host.lead();
    // This tab's own calls made while it followed, then everyone else's: the new leader says so.
    for (const { call } of [...this.#calls.values()]) this.#serve(call);
    this.#post({ type: "leader" });
  }

  #receive(message: TabMessage): void {
    switch (message.type) {
      case "event":
        if (!this.#leading) this.#host.relayed(message.event, message.payload, message.who);
        return;
      case "hello":
        // A new follower: tell it where things stand.
        if (this.#leading && this.#status) this.#post(this.#status);
        return;
      case "leader":
        // A new leader: whatever this tab asked of the old one goes again (sends keep their ids).
        if (!this.#leading) for (const { call } of this.#calls.values()) this.#post(call);
        return;
      case "call":
        if (this.#leading) this.#serve(message);
        return;
      case "reply":
        this.#settle(message.id, message.value, message.error);
        return;
    }
  }

  /** Runs a call (another tab's, or this tab's own) on this tab's connection and answers it. */
  #serve(call: CallMessage): void {
    const answer = (value: unknown, error?: WireError) => {
      if (!this.#settle(call.id, value, error)) this.#post({ type: "reply", id: call.id, value, error });
    };
    this.#host.run(call.method, call.args).then(
      (value) => answer(value),
      (e) => answer(undefined, wireError(e)),
    );
  }

  #post(message: TabMessage): void {
    try {
      this.#channel.postMessage(message);
    } catch {
      // A closed channel: this tab is closing.
    }
  }

  /** Settles this tab's own call `id`, if it is one; says whether it was. */
  #settle(id: string, value: unknown, error?: WireError): boolean {
    const waiting = this.#calls.get(id);
    if (!waiting) return false;
    this.#calls.delete(id);
    if (error) waiting.reject(chatError(error));
    else waiting.resolve(value);
    return true;
  }
}
