//! The TypeScript declarations of the package: the custom section wasm-bindgen copies into
//! `chat_sdk.d.ts`, and the typed stand-ins for `JsValue` that the exports use.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
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
export type Status = "idle" | "connecting" | "open" | "reconnecting" | "unauthorized" | "closed";
export interface ChatClientOptions {
  /** The chat server: NEXT_PUBLIC_SOCKET_URL as written (http://localhost:4000), or a ws(s):// URL. */
  url: string;
  /** Returns a fresh token from your app; called on every (re)connect and before expiry. */
  getToken: () => Promise<string>;
}
export interface ChatEventMap {
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
  /** The connection status changed; `code` is the protocol error code of a server close. */
  status: { status: Status; code?: number };
  /** A catch-up after a reconnect finished: how many messages were new, and fresh unread counts. */
  caughtUp: { count: number; conversations: Conversation[] | null };
}
/** An edit or deletion of a message: when, which, and the text it replaced (supervisors only). */
export interface Revision { at: number; deleted: boolean; before: string }
/** Errors carry the protocol's stable error code. */
export interface ChatError extends Error { code: number; codeName: string; retryable: boolean }
export interface ChatClient {
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ChatEventMap>(event: K, handler: (event: ChatEventMap[K]) => void): () => void;
}
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "ChatClientOptions")]
    pub type ChatClientOptions;
    #[wasm_bindgen(typescript_type = "UserRef")]
    pub type JsUserRef;
    #[wasm_bindgen(typescript_type = "UserRef[]")]
    pub type JsUserRefs;
    #[wasm_bindgen(typescript_type = "Cursor")]
    pub type JsCursor;
    #[wasm_bindgen(typescript_type = "HistoryOptions")]
    pub type JsHistoryOptions;
    #[wasm_bindgen(typescript_type = "Promise<Message>")]
    pub type PromiseMessage;
    #[wasm_bindgen(typescript_type = "Promise<HistoryPage>")]
    pub type PromiseHistory;
    #[wasm_bindgen(typescript_type = "Promise<Conversation[]>")]
    pub type PromiseConversations;
    #[wasm_bindgen(typescript_type = "Promise<number>")]
    pub type PromiseNumber;
    #[wasm_bindgen(typescript_type = "Promise<void>")]
    pub type PromiseVoid;
    #[wasm_bindgen(typescript_type = "Promise<UserRef[]>")]
    pub type PromiseUsers;
    #[wasm_bindgen(typescript_type = "Promise<Revision[]>")]
    pub type PromiseRevisions;
    #[wasm_bindgen(typescript_type = "Status")]
    pub type JsStatus;
    #[wasm_bindgen(typescript_type = "UserRef | undefined")]
    pub type JsMaybeUser;
}
