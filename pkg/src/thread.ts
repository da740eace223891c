// One conversation's state as `useConversation` (chat-sdk/react) shows it, and every way it
// changes, as a pure reducer: no React, no client, so each transition is unit-tested on its own
// (pkg/test/unit.mjs) and the hook only maps the client's events and answers to actions.
import type { Cursor, Message, UserRef } from "./types.js";

/** A message as a conversation shows it: stored, or still being sent (or failed to send). */
export interface ThreadMessage {
  /** Stable while the message goes from pending to stored: use it as the React key. */
  localId: string;
  /** The server's id, once stored. */
  id: string | null;
  from: UserRef;
  to: UserRef;
  content: string;
  /** When the server stored it; null while pending. */
  createdAt: number | null;
  read: boolean;
  state: "pending" | "failed" | "stored";
  /** Why a send failed (the error's `codeName`). */
  error?: string;
  /** Deleted by its sender (its `content` is ""): show "message deleted" where the text was. */
  deleted?: boolean;
  /** Edited by its sender while this thread was open. */
  edited?: boolean;
}

export interface ThreadState {
  /** Oldest first; sends not yet stored last, in the order they were made. */
  messages: ThreadMessage[];
  /** Where the next older page starts; null when there is none. */
  older: Cursor | null;
  /** Whether the peer is typing to us. */
  peerTyping: boolean;
}

export type ThreadAction =
  /** Another conversation was opened (or none): start empty. */
  | { type: "opened" }
  /** The newest page arrived; `restored`: sends an earlier page left unacknowledged, shown pending. */
  | { type: "history"; page: Message[]; next: Cursor | null; restored: ThreadMessage[] }
  /** An older page arrived (newest first, as the server sends pages). */
  | { type: "older"; page: Message[]; next: Cursor | null }
  /** This user wrote a message: shown at once, pending. */
  | { type: "queued"; item: ThreadMessage }
  /** A failed send is being tried again. */
  | { type: "sending"; localId: string }
  /** The server stored a send of this page (or a restored one). */
  | { type: "stored"; localId: string; message: Message }
  /** A send was refused; `error` is the error's code name. */
  | { type: "failed"; localId: string; error: string }
  /** A live message of this conversation, from either side (from another tab too). */
  | { type: "message"; message: Message; fromPeer: boolean }
  /** The sender edited or deleted a message. */
  | { type: "changed"; message: Message; deleted: boolean }
  | { type: "typing"; on: boolean }
  /** The peer read this user's messages up to `upTo`. */
  | { type: "read"; me: UserRef; upTo: Cursor };

export const emptyThread: ThreadState = { messages: [], older: null, peerTyping: false };

export const storedMessage = (m: Message): ThreadMessage => ({
  ...m,
  localId: m.id,
  state: "stored",
  deleted: m.content === "",
});

/** By time, then id; a send not yet stored (no time) after every stored one. */
const byTime = (a: ThreadMessage, b: ThreadMessage) =>
  (a.createdAt ?? Infinity) - (b.createdAt ?? Infinity) || ((a.id ?? "") < (b.id ?? "") ? -1 : 1);
const notAfter = (m: ThreadMessage, c: Cursor) =>
  m.createdAt !== null && m.id !== null && (m.createdAt < c.at || (m.createdAt === c.at && m.id <= c.id));
const same = (a: UserRef, b: UserRef) => a.role === b.role && a.id === b.id;

export function threadReducer(state: ThreadState, action: ThreadAction): ThreadState {
  const { messages } = state;
  switch (action.type) {
    case "opened":
      return emptyThread;
    case "history": {
      const items = action.page.map(storedMessage).reverse();
      // Keep what was sent or arrived while the page was on its way, without the page's own
      // messages and without a second copy of a restored send.
      const loaded = new Set(items.map((m) => m.id));
      const restored = action.restored.filter((r) => !loaded.has(r.localId));
      const kept = messages.filter((m) => !loaded.has(m.id) && !restored.some((r) => r.localId === m.localId));
      return { ...state, messages: [...items, ...restored, ...kept], older: action.next };
    }
    case "older": {
      const have = new Set(messages.map((m) => m.id));
      const page = action.page.map(storedMessage).reverse().filter((m) => !have.has(m.id));
      return { ...state, messages: [...page, ...messages], older: action.next };
    }
    case "queued":
      return { ...state, messages: [...messages, action.item] };
    case "sending":
      return {
        ...state,
        messages: messages.map((m) => (m.localId === action.localId ? { ...m, state: "pending", error: undefined } : m)),
      };
    case "stored": {
      if (!messages.some((m) => m.localId === action.localId)) return state;
      // Stored under its local id; a live copy of the same message (another tab's echo) goes.
      const stored = { ...storedMessage(action.message), localId: action.localId };
      const rest = messages.filter((m) => m.localId === action.localId || m.id !== action.message.id);
      return { ...state, messages: rest.map((m) => (m.localId === action.localId ? stored : m)).sort(byTime) };
    }
    case "failed":
      return {
        ...state,
        messages: messages.map((m) =>
          m.localId === action.localId && m.state === "pending" ? { ...m, state: "failed", error: action.error } : m,
        ),
      };
    case "message": {
      const known = messages.some((m) => m.id === action.message.id);
      return {
        ...state,
        messages: known ? messages : [...messages, storedMessage(action.message)].sort(byTime),
        peerTyping: action.fromPeer ? false : state.peerTyping,
      };
    }
    case "changed":
      return {
        ...state,
        messages: messages.map((m) =>
          m.id === action.message.id ? { ...m, content: action.message.content, deleted: action.deleted, edited: !action.deleted } : m,
        ),
      };
    case "typing":
      return state.peerTyping === action.on ? state : { ...state, peerTyping: action.on };
    case "read":
      return {
        ...state,
        messages: messages.map((m) =>
          same(m.from, action.me) && !m.read && notAfter(m, action.upTo) ? { ...m, read: true } : m,
        ),
      };
  }
}
