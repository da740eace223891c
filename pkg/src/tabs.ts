// One connection per browser for each user: the tabs of a user elect a leader with Web Locks
// (the lock is freed when its tab closes or crashes, and the next tab waiting gets it), and
// talk over a BroadcastChannel: followers send their calls to the leader, the leader answers
// and relays every event of its connection.
import type { UserRef, WireError } from "./types.js";

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

/** This tab's membership in its user's group of tabs. */
export class Link {
  readonly #channel: BroadcastChannel;
  readonly #abort = new AbortController();
  #release: (() => void) | null = null;

  constructor(
    user: string,
    handlers: { onLead: () => Promise<void>; onMessage: (message: TabMessage) => void },
  ) {
    const name = `chat-sdk:${user}`;
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (event: MessageEvent<TabMessage>) => handlers.onMessage(event.data);
    this.post({ type: "hello" });
    // Waits (as a follower) until this tab holds the lock, then leads until it closes.
    navigator.locks
      .request(name, { signal: this.#abort.signal }, async () => {
        await handlers.onLead();
        await new Promise<void>((resolve) => {
          this.#release = resolve;
        });
      })
      .catch(() => {});
  }

  post(message: TabMessage): void {
    try {
      this.#channel.postMessage(message);
    } catch {
      // A closed channel: this tab is closing.
    }
  }

  /** Leaves the group: gives up the lock (another tab takes over) or stops waiting for it. */
  close(): void {
    this.#abort.abort();
    this.#release?.();
    this.#channel.close();
  }
}
