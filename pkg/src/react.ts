"use client";
// chat-sdk/react: a provider and hooks for React and Next.js. The client is created in an
// effect (never during server rendering: no wasm on the server), connected once, and closed
// and freed on unmount; StrictMode's double effects and fast refresh create a new one without
// leaking the old.
import {
  createContext,
  createElement,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useReducer,
  useRef,
  useState,
  type ReactElement,
  type ReactNode,
} from "react";
import init, {
  ChatClient,
  type ChatError,
  type ChatEventMap,
  type Conversation,
  type Cursor,
  type Status,
  type UserRef,
  userKey,
} from "./index.js";
import { type Announcement, Announcer, LiveText } from "./announce.js";
import { type ThreadMessage, emptyThread, threadReducer } from "./thread.js";

export { userKey };
export type { ThreadMessage };


/** Whether two users are the same person (role and id: teacher 1 is not student 1). */
export function sameUser(a: UserRef | null | undefined, b: UserRef | null | undefined): boolean {
  return !!a && !!b && a.role === b.role && a.id === b.id;
}

export interface ChatProviderProps {
  /** The chat server: NEXT_PUBLIC_SOCKET_URL as written (http://localhost:4000). */
  url: string;
  /** Your app's route that answers `{ "token": "..." }` for the signed-in user (default `/api/chat-token`). */
  tokenUrl?: string;
  /** Or a function returning a fresh token (used instead of `tokenUrl`). */
  getToken?: () => Promise<string>;
  /**
   * The signed-in user: unacknowledged sends are then kept in IndexedDB for this user and sent
   * after a reload (see `ChatClient`'s `user` option). Call `signOut()` or
   * `ChatClient.clearStorage(user)` when the user signs out of a shared computer.
   */
  user?: UserRef;
  children?: ReactNode;
}

/** What `useChat` gives: the client once the wasm is loaded, its status, and who we are. */
export interface ChatState {
  client: ChatClient | null;
  status: Status;
  /** The server's reason while `status` is `refused` (show it: it names the setting to change). */
  reason: string | null;
  /** Who the server says we are, once connected. */
  user: UserRef | null;
}

interface Shared extends ChatState {
  /** Local notices between hooks (a conversation this tab marked read). */
  local: EventTarget;
}

const ChatContext = createContext<Shared | null>(null);

async function fetchToken(tokenUrl: string): Promise<string> {
  const response = await fetch(tokenUrl, { cache: "no-store", credentials: "same-origin" });
  if (!response.ok) throw new Error(`${tokenUrl} answered HTTP ${response.status}`);
  const body: unknown = await response.json();
  const token = (body as { token?: unknown } | null)?.token;
  if (typeof token !== "string") throw new Error(`${tokenUrl} did not answer { "token": "..." }`);
  return token;
}

/** Holds one chat client for everything below it. Put it in a client component. */
export function ChatProvider({
  url,
  tokenUrl = "/api/chat-token",
  getToken,
  user: signedIn,
  children,
}: ChatProviderProps): ReactElement {
  const [state, setState] = useState<ChatState>({ client: null, status: "idle", reason: null, user: null });
  const local = useMemo(() => new EventTarget(), []);
  // A `getToken` written inline changes every render: read the latest one when needed.
  const tokens = useRef(getToken);
  tokens.current = getToken;
  const signedInRole = signedIn?.role;
  const signedInId = signedIn?.id;

  useEffect(() => {
    let cancelled = false;
    let client: ChatClient | null = null;
    void init().then(() => {
      if (cancelled) return;
      const c = new ChatClient({
        url,
        getToken: () => (tokens.current ? tokens.current() : fetchToken(tokenUrl)),
        user: signedInRole && signedInId !== undefined ? { role: signedInRole, id: signedInId } : undefined,
      });
      client = c;
      c.on("status", ({ status, reason }) => setState({ client: c, status, reason: reason ?? null, user: c.user ?? null }));
      c.connect();
      setState({ client: c, status: c.status, reason: c.statusReason, user: c.user ?? null });
    });
    return () => {
      cancelled = true;
      client?.close();
      client?.free();
      setState({ client: null, status: "idle", reason: null, user: null });
    };
  }, [url, tokenUrl, signedInRole, signedInId]);

  const value = useMemo<Shared>(() => ({ ...state, local }), [state, local]);
  return createElement(ChatContext.Provider, { value }, children);
}

function useShared(): Shared {
  const shared = useContext(ChatContext);
  if (!shared) throw new Error("chat-sdk/react: use the chat hooks inside <ChatProvider>");
  return shared;
}

/** The client (null until the wasm is loaded, and during server rendering), its status, and who we are. */
export function useChat(): ChatState {
  const { client, status, reason, user } = useShared();
  return { client, status, reason, user };
}

/** Calls `handler` for every `event` of the client, with the latest `handler` (no resubscribing). */
export function useChatEvent<K extends keyof ChatEventMap>(event: K, handler: (payload: ChatEventMap[K]) => void): void {
  const { client } = useShared();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => {
    if (!client) return;
    return client.on(event, (payload) => latest.current(payload));
  }, [client, event]);
}

const MARKED_READ = "chat-sdk:marked-read";

/**
 * Every conversation of this user, most recent first, with unread counts: loaded when the
 * connection opens, refreshed after a catch-up, and kept current by live messages and reads.
 */
export function useConversations(): { conversations: Conversation[]; loading: boolean; error: ChatError | null } {
  const { client, status, user, local } = useShared();
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ChatError | null>(null);
  const shown = useRef(conversations);
  shown.current = conversations;

  const load = useCallback(() => {
    if (!client) return;
    client.conversations().then(
      (list) => {
        setConversations(list);
        setError(null);
        setLoading(false);
      },
      (e: ChatError) => {
        setError(e);
        setLoading(false);
      },
    );
  }, [client]);

  useEffect(() => {
    if (status === "open") load();
  }, [status, load]);

  useChatEvent("caughtUp", ({ conversations: fresh }) => fresh && setConversations(fresh));
  useChatEvent("message", ({ message }) => {
    if (!user) return;
    const mine = sameUser(message.from, user);
    const peer = mine ? message.to : message.from;
    // A new conversation: its peer's name comes with the list.
    if (!shown.current.some((c) => sameUser(c.peer, peer))) {
      load();
      return;
    }
    setConversations((list) =>
      list
        .map((c) => {
          if (!sameUser(c.peer, peer) || c.last.id === message.id || c.last.createdAt > message.createdAt) return c;
          return { ...c, last: message, unread: mine ? c.unread : c.unread + 1 };
        })
        .sort((a, b) => b.last.createdAt - a.last.createdAt),
    );
  });
  // This user read a conversation in another tab, or here.
  useChatEvent("read", ({ reader, peer }) => {
    if (sameUser(reader, user)) setConversations((list) => list.map((c) => (sameUser(c.peer, peer) ? { ...c, unread: 0 } : c)));
  });
  useEffect(() => {
    const onMarked = (e: Event) => {
      const peer = (e as CustomEvent<UserRef>).detail;
      setConversations((list) => list.map((c) => (sameUser(c.peer, peer) ? { ...c, unread: 0 } : c)));
    };
    local.addEventListener(MARKED_READ, onMarked);
    return () => local.removeEventListener(MARKED_READ, onMarked);
  }, [local]);

  return { conversations, loading, error };
}

export interface ConversationOptions {
  /** Messages per history page (default 30). */
  pageSize?: number;
  /** Mark the peer's messages read as they are shown, while the page is visible (default true). */
  markRead?: boolean;
}

export interface ConversationState {
  /** Oldest first. */
  messages: ThreadMessage[];
  /** Whether older messages can be loaded. */
  hasOlder: boolean;
  loadOlder: () => Promise<void>;
  /** Sends `content` to the peer; it shows at once as pending. */
  send: (content: string) => void;
  /** Sends a failed message again. */
  retry: (localId: string) => void;
  /** Whether the peer is typing to us. */
  peerTyping: boolean;
  /** Tells the peer we are (or stopped) typing; throttled by the SDK. */
  setTyping: (on: boolean) => void;
}

/** One conversation: its history page by page, live messages, sends, receipts and typing. */
export function useConversation(peer: UserRef | null, options: ConversationOptions = {}): ConversationState {
  const { pageSize = 30, markRead: autoRead = true } = options;
  const { client, user, local } = useShared();
  const [state, dispatch] = useReducer(threadReducer, emptyThread);
  const { messages, older, peerTyping } = state;
  const loadingOlder = useRef(false);
  // The peer as a value: a new object with the same role and id is the same conversation.
  const peerRole = peer?.role;
  const peerId = peer?.id;
  const current = useMemo<UserRef | null>(
    () => (peerRole && peerId !== undefined ? { role: peerRole, id: peerId } : null),
    [peerRole, peerId],
  );
  const currentRef = useRef(current);
  currentRef.current = current;
  const messagesRef = useRef(messages);
  messagesRef.current = messages;

  const markRead = useCallback(
    (upTo: Cursor) => {
      const who = currentRef.current;
      if (!client || !who || !autoRead || document.visibilityState !== "visible") return;
      client.markRead(who, upTo).then(
        () => local.dispatchEvent(new CustomEvent(MARKED_READ, { detail: who })),
        () => {},
      );
    },
    [client, autoRead, local],
  );

  // Opening a conversation: its newest page, then read up to the newest message received.
  useEffect(() => {
    dispatch({ type: "opened" });
    if (!client || !current) return;
    let cancelled = false;
    client.history(current, { limit: pageSize }).then(
      (page) => {
        if (cancelled) return;
        // The sends a previous page left unacknowledged (restored from storage) show as pending.
        const restored = client.pendingSends
          .filter((p) => sameUser(p.to, current))
          .map((p): ThreadMessage => ({ ...p, localId: p.id, from: user ?? p.to, createdAt: null, read: false, state: "pending" }));
        dispatch({ type: "history", page: page.messages, next: page.next, restored });
        const lastTheirs = page.messages.find((m) => sameUser(m.from, current));
        if (lastTheirs) markRead({ at: lastTheirs.createdAt, id: lastTheirs.id });
      },
      () => {},
    );
    return () => {
      cancelled = true;
    };
  }, [client, current, pageSize, markRead, user]);

  // A restored send (or one from this page) settled: show it stored, or failed.
  useChatEvent("sent", ({ message }) => dispatch({ type: "stored", localId: message.id, message }));
  useChatEvent("failed", ({ id, error }) => dispatch({ type: "failed", localId: id, error: error.codeName }));
  useChatEvent("message", ({ message }) => {
    const who = currentRef.current;
    if (!who || !(sameUser(message.from, who) || sameUser(message.to, who))) return;
    const fromPeer = sameUser(message.from, who);
    dispatch({ type: "message", message, fromPeer });
    if (fromPeer) markRead({ at: message.createdAt, id: message.id });
  });
  useChatEvent("changed", ({ message, deleted }) => dispatch({ type: "changed", message, deleted }));
  // The SDK's core ends a peer's typing itself when no renewal comes (a closed tab, a lost
  // connection): it says so with a `typing` event like any other.
  useChatEvent("typing", ({ from, on }) => {
    if (sameUser(from, currentRef.current)) dispatch({ type: "typing", on });
  });
  useChatEvent("read", ({ reader, peer: whose, upTo }) => {
    if (user && sameUser(reader, currentRef.current) && sameUser(whose, user)) dispatch({ type: "read", me: user, upTo });
  });

  const loadOlder = useCallback(async () => {
    const who = currentRef.current;
    if (!client || !who || !older || loadingOlder.current) return;
    loadingOlder.current = true;
    try {
      const page = await client.history(who, { before: older, limit: pageSize });
      if (sameUser(who, currentRef.current)) dispatch({ type: "older", page: page.messages, next: page.next });
    } finally {
      loadingOlder.current = false;
    }
  }, [client, older, pageSize]);

  const deliver = useCallback(
    (item: ThreadMessage) => {
      if (!client) return;
      dispatch({ type: "sending", localId: item.localId });
      client.send(item.to, item.content).then(
        (message) => dispatch({ type: "stored", localId: item.localId, message }),
        (e: ChatError) => dispatch({ type: "failed", localId: item.localId, error: e.codeName ?? String(e) }),
      );
    },
    [client],
  );

  const send = useCallback(
    (content: string) => {
      const who = currentRef.current;
      if (!client || !who || !user || !content.trim()) return;
      void client.setTyping(who, false).catch(() => {});
      const item: ThreadMessage = {
        localId: crypto.randomUUID(),
        id: null,
        from: user,
        to: who,
        content,
        createdAt: null,
        read: false,
        state: "pending",
      };
      dispatch({ type: "queued", item });
      deliver(item);
    },
    [client, user, deliver],
  );

  const retry = useCallback(
    (localId: string) => {
      const item = messagesRef.current.find((m) => m.localId === localId && m.state === "failed");
      if (item) deliver(item);
    },
    [deliver],
  );

  const setTyping = useCallback(
    (on: boolean) => {
      const who = currentRef.current;
      if (client && who) void client.setTyping(who, on).catch(() => {});
    },
    [client],
  );

  return { messages, hasOlder: older !== null, loadOlder, send, retry, peerTyping, setTyping };
}

/**
 * Who of `users` is online now, by `userKey`, kept current by presence events. The server keeps
 * one watch list per client: use one `usePresence` per provider.
 */
export function usePresence(users: UserRef[]): Record<string, boolean> {
  const { client, status } = useShared();
  const [online, setOnline] = useState<Record<string, boolean>>({});
  const list = users.map(userKey).sort().join(",");
  const latest = useRef(users);
  latest.current = users;

  useEffect(() => {
    if (!client || status !== "open") return;
    let cancelled = false;
    const watched = latest.current.map(({ role, id }) => ({ role, id }));
    client.watchPresence(watched).then(
      (here) => !cancelled && setOnline(Object.fromEntries(here.map((u) => [userKey(u), true]))),
      () => {},
    );
    return () => {
      cancelled = true;
    };
  }, [client, status, list]);

  useChatEvent("presence", ({ user, online: isOnline }) => setOnline((o) => ({ ...o, [userKey(user)]: isOnline })));
  return online;
}

export interface AnnouncementsOptions {
  /** The conversation on screen (null: none). */
  peer: UserRef | null;
  /** A person's name as the page shows it. */
  nameOf?: (user: UserRef) => string;
  /** The open conversation's messages (`useConversation().messages`): its failed sends are said. */
  messages?: ThreadMessage[];
}

/** The texts of a page's two live regions: `polite` (role="status") and `assertive` (role="alert"). */
export interface Announcements {
  polite: string;
  assertive: string;
}

/**
 * What the page's screen-reader live regions should say, computed by the SDK (`chat-sdk/announce`):
 * a new message in the open conversation read out once, one elsewhere named as such, a failed
 * send and a refused page said at once, a lost and regained connection said once each; never
 * typing, history pages or the user's own messages. Render both, visually hidden, always
 * present (a live region added with its text is not read):
 *
 *     const said = useAnnouncements({ peer, nameOf, messages: conversation.messages });
 *     <div role="status" className="visually-hidden">{said.polite}</div>
 *     <div role="alert" className="visually-hidden">{said.assertive}</div>
 */
export function useAnnouncements({ peer, nameOf, messages }: AnnouncementsOptions): Announcements {
  const { client, user } = useShared();
  const names = useRef(nameOf);
  names.current = nameOf;
  const announcer = useMemo(
    () => new Announcer({ me: null, nameOf: (u) => (names.current ? names.current(u) : `${u.role} ${u.id}`) }),
    [],
  );
  const texts = useMemo(() => ({ polite: new LiveText(), assertive: new LiveText() }), []);
  const [said, setSaid] = useState<Announcements>({ polite: "", assertive: "" });
  const say = useCallback(
    (a: Announcement | null) => {
      if (a) setSaid((s) => ({ ...s, [a.politeness]: texts[a.politeness].next(a.text) }));
    },
    [texts],
  );
  announcer.setMe(user);
  announcer.setOpen(peer);

  useChatEvent("message", ({ message, live }) => say(announcer.message(message, live)));
  useChatEvent("caughtUp", ({ count }) => say(announcer.caughtUp(count)));
  useChatEvent("status", ({ status, reason }) => say(announcer.status(status, reason)));
  useEffect(() => {
    if (client) say(announcer.status(client.status, client.statusReason));
  }, [client, announcer, say]);

  // Sends of the open conversation that turned failed (each once), and failed sends elsewhere.
  const failed = useRef(new Set<string>());
  useEffect(() => {
    for (const m of messages ?? []) {
      if (m.state !== "failed" || failed.current.has(m.localId)) continue;
      failed.current.add(m.localId);
      say(announcer.sendFailed(m.to, m.content, describeFailure(m.error)));
    }
  }, [messages, announcer, say]);
  useChatEvent("failed", ({ id, to, content, error }) => {
    if (failed.current.has(id) || (messages ?? []).some((m) => m.localId === id)) return;
    failed.current.add(id);
    say(announcer.sendFailed(to, content, error.message));
  });
  return said;
}

/** A failed send's reason in words, from the error's code name. */
function describeFailure(codeName: string | undefined): string {
  switch (codeName) {
    case undefined:
      return "it was refused";
    case "blocked":
      return "one of you has blocked the other";
    case "not_allowed":
    case "reply_only":
      return "the school does not allow this message";
    case "content_too_long":
      return "it is too long";
    case "rate_limited":
      return "too many messages at once; try again";
    default:
      return codeName.replace(/_/g, " ");
  }
}
