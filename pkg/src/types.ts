// The package's data types: what the wasm core's events carry (as JSON, see
// client-wasm/src/json.rs) and what the app passes in.

/** A user: role and id together (teacher 1 and student 1 are different people). */
export interface UserRef { role: "teacher" | "student"; id: number }
/** A position in a conversation: a message's createdAt (ms since the epoch) and id. */
export interface Cursor { at: number; id: string }
/** A stored message. */
export interface Message {
  id: string;
  from: UserRef;
  to: UserRef;
  content: string;
  /** When the server stored it, ms since the epoch. */
  createdAt: number;
  /** Whether the recipient has read it. */
  read: boolean;
}
/** One conversation of the list. */
export interface Conversation { peer: UserRef; peerName: string; last: Message; unread: number }
/** A page of history, newest first; pass `next` as `before` for the older page. */
export interface HistoryPage { messages: Message[]; next: Cursor | null }
export interface HistoryOptions { before?: Cursor | null; limit?: number }
/**
 * `unauthorized`: the server refused the credentials; `refused`: it refuses this page for good
 * (its origin is not in CHAT_ALLOWED_ORIGINS; the status event's `reason` says which). Both are
 * final until `connect()` is called again; `reconnecting` is a temporary drop.
 */
export type Status = "idle" | "connecting" | "open" | "reconnecting" | "unauthorized" | "closed" | "refused";
export interface ConnectionOptions {
  /** The chat server: NEXT_PUBLIC_SOCKET_URL as written (http://localhost:4000), or a ws(s):// URL. */
  url: string;
  /** Returns a fresh token from your app; called on every (re)connect and before expiry. */
  getToken: () => Promise<string> | string;
}
export interface ConnectionEventMap {
  /** A message to or from this user. `live` is false for messages caught up after a disconnect.
   * `position`: the client's message log position after it (what another tab resumes from).
   * `quiet`: sent to this student during the school's quiet hours: show it, do not notify. */
  message: { message: Message; live: boolean; position: number; quiet: boolean };
  /** `reader` read `peer`'s messages up to `upTo`. */
  read: { reader: UserRef; peer: UserRef; upTo: Cursor };
  typing: { from: UserRef; on: boolean };
  presence: { user: UserRef; online: boolean };
  /** A message was edited or deleted by its sender: `message` as it is now (`content` is "" once deleted). */
  changed: { message: Message; deleted: boolean };
  /** The connection status changed; `code` is the protocol error code of a server close;
   * `reason`: the server's sentence when it refuses the page (`refused`), to show as it is. */
  status: { status: Status; code?: number; reason?: string };
  /** A catch-up after a reconnect finished: how many messages were new, and fresh unread counts. */
  caughtUp: { count: number; conversations: Conversation[] | null };
}
/** An edit or deletion of a message: when, which, and the text it replaced (supervisors only). */
export interface Revision { at: number; deleted: boolean; before: string }
/** Errors carry the protocol's stable error code. */
export interface ChatError extends Error { code: number; codeName: string; retryable: boolean }
/** A ChatError as plain data (it crosses between tabs, and out of the core, like this). */
export interface WireError { message: string; code: number; codeName: string; retryable: boolean }

export function chatError(e: WireError): ChatError {
  return Object.assign(new Error(e.message), { code: e.code, codeName: e.codeName, retryable: e.retryable });
}
