"use client";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import type { ChatError, Conversation, Cursor, Message, UserRef } from "chat-sdk";
import { useChat } from "./useChat";

export type Person = UserRef & { name: string };

/** A message on screen: stored (with its server `createdAt`), or still being sent. */
type Item = Omit<Message, "id" | "createdAt"> & {
  id: string | null; // null until the server stored it
  createdAt: number | null;
  localId: string;
  state: "pending" | "failed" | "stored";
  error?: string;
};

const key = (u: UserRef) => `${u.role}-${u.id}`;
const same = (a: UserRef | null | undefined, b: UserRef | null | undefined) =>
  !!a && !!b && a.role === b.role && a.id === b.id;
const cursorOf = (m: { createdAt: number | null; id: string | null }): Cursor => ({ at: m.createdAt ?? 0, id: m.id ?? "" });
const notAfter = (m: Item, c: Cursor) =>
  m.createdAt !== null && m.id !== null && (m.createdAt < c.at || (m.createdAt === c.at && m.id <= c.id));
const stored = (m: Message): Item => ({ ...m, localId: m.id, state: "stored" });
const byTime = (a: Item, b: Item) =>
  (a.createdAt ?? Infinity) - (b.createdAt ?? Infinity) || ((a.id ?? "") < (b.id ?? "") ? -1 : 1);
const PAGE = 30;

export function Chat({ socketUrl, me, peers }: { socketUrl: string; me: Person; peers: Person[] }) {
  const { client, status } = useChat(socketUrl);
  const [active, setActive] = useState<Person | null>(null);
  const [unread, setUnread] = useState<Record<string, number>>({});
  const [online, setOnline] = useState<Record<string, boolean>>({});
  const [last, setLast] = useState<Record<string, Message>>({});
  const [thread, setThread] = useState<Item[]>([]);
  const [older, setOlder] = useState<Cursor | null>(null);
  const [typing, setTyping] = useState(false);
  const [draft, setDraft] = useState("");
  const activeRef = useRef<Person | null>(null);
  activeRef.current = active;
  const scroller = useRef<HTMLDivElement>(null);
  const topSentinel = useRef<HTMLDivElement>(null);
  const keepScroll = useRef<number | null>(null);
  const loadingOlder = useRef(false);
  const typingTimer = useRef<ReturnType<typeof setTimeout>>(undefined);

  const applyConversations = useCallback((list: Conversation[]) => {
    setUnread(Object.fromEntries(list.map((c) => [key(c.peer), same(c.peer, activeRef.current) ? 0 : c.unread])));
    setLast(Object.fromEntries(list.map((c) => [key(c.peer), c.last])));
  }, []);
  const noteLast = (peer: UserRef, m: Message) =>
    setLast((l) => {
      const before = l[key(peer)];
      return before && before.createdAt > m.createdAt ? l : { ...l, [key(peer)]: m };
    });

  const markRead = useCallback(
    async (peer: UserRef, upTo: Cursor) => {
      if (!client || document.visibilityState !== "visible") return;
      try {
        await client.markRead(peer, upTo);
        setUnread((u) => ({ ...u, [key(peer)]: 0 }));
      } catch (e) {
        console.warn("markRead failed", e);
      }
    },
    [client],
  );

  // Conversation list and presence once connected; events for as long as the client lives.
  useEffect(() => {
    if (!client) return;
    const load = async () => {
      try {
        applyConversations(await client.conversations());
        const here = await client.watchPresence(peers.map(({ role, id }) => ({ role, id })));
        setOnline(Object.fromEntries(here.map((u) => [key(u), true])));
      } catch (e) {
        console.warn("loading conversations failed", e);
      }
    };
    if (client.status === "open") void load();
    const offs = [
      client.on("status", ({ status: s }) => s === "open" && void load()),
      client.on("caughtUp", ({ conversations }) => conversations && applyConversations(conversations)),
      client.on("presence", ({ user, online: isOnline }) => setOnline((o) => ({ ...o, [key(user)]: isOnline }))),
      client.on("typing", ({ from, on }) => {
        if (!same(from, activeRef.current)) return;
        clearTimeout(typingTimer.current);
        setTyping(on);
        if (on) typingTimer.current = setTimeout(() => setTyping(false), 6000);
      }),
      client.on("read", ({ reader, peer, upTo }) => {
        if (!same(reader, activeRef.current) || !same(peer, me)) return;
        setThread((t) => t.map((m) => (same(m.from, me) && notAfter(m, upTo) ? { ...m, read: true } : m)));
      }),
      client.on("message", ({ message }) => {
        const peer = same(message.from, me) ? message.to : message.from;
        noteLast(peer, message);
        if (same(peer, activeRef.current)) {
          setThread((t) => (t.some((m) => m.id === message.id) ? t : [...t, stored(message)].sort(byTime)));
          if (same(message.from, peer)) {
            setTyping(false);
            void markRead(peer, cursorOf(message));
          }
        } else if (!same(message.from, me)) {
          setUnread((u) => ({ ...u, [key(peer)]: (u[key(peer)] ?? 0) + 1 }));
        }
      }),
    ];
    return () => offs.forEach((off) => off());
  }, [client, me, peers, applyConversations, markRead]);

  // Opening a conversation: its newest page, then read up to the newest message received.
  useEffect(() => {
    if (!client || !active) return;
    let cancelled = false;
    setThread([]);
    setOlder(null);
    setTyping(false);
    client.history(active, { limit: PAGE }).then(
      (page) => {
        if (cancelled) return;
        const items = page.messages.map(stored).reverse();
        // Keep what was sent or arrived while the page was on its way (a message sent right
        // after opening the conversation would otherwise vanish from view).
        const loaded = new Set(items.map((m) => m.id));
        setThread((t) => [...items, ...t.filter((m) => !loaded.has(m.id))]);
        setOlder(page.next);
        const lastTheirs = [...items].reverse().find((m) => same(m.from, active));
        if (lastTheirs) void markRead(active, cursorOf(lastTheirs));
      },
      (e) => console.warn("history failed", e),
    );
    return () => {
      cancelled = true;
    };
  }, [client, active, markRead]);

  // Infinite scroll: when the top of the thread comes into view, load the page before it.
  const loadOlder = useCallback(async () => {
    const peer = activeRef.current;
    if (!client || !peer || !older || loadingOlder.current) return;
    loadingOlder.current = true;
    try {
      const page = await client.history(peer, { before: older, limit: PAGE });
      if (!same(peer, activeRef.current)) return;
      keepScroll.current = scroller.current ? scroller.current.scrollHeight - scroller.current.scrollTop : null;
      setThread((t) => [...page.messages.map(stored).reverse(), ...t]);
      setOlder(page.next);
    } finally {
      loadingOlder.current = false;
    }
  }, [client, older]);

  useEffect(() => {
    const sentinel = topSentinel.current;
    if (!sentinel || !older) return;
    const observer = new IntersectionObserver((entries) => entries[0]?.isIntersecting && void loadOlder(), {
      root: scroller.current,
    });
    observer.observe(sentinel);
    return () => observer.disconnect();
  }, [older, loadOlder]);

  // Keep the view where it was after older messages were prepended; else follow the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (keepScroll.current !== null) {
      el.scrollTop = el.scrollHeight - keepScroll.current;
      keepScroll.current = null;
    } else {
      el.scrollTop = el.scrollHeight;
    }
  }, [thread]);

  const sendItem = (item: Item) => {
    if (!client) return;
    const peer = item.to;
    setThread((t) => t.map((m) => (m.localId === item.localId ? { ...m, state: "pending", error: undefined } : m)));
    client.send(peer, item.content).then(
      (message) => {
        noteLast(peer, message);
        setThread((t) =>
          t.map((m) => (m.localId === item.localId ? { ...stored(message), localId: item.localId } : m)).sort(byTime),
        );
      },
      (e: ChatError) =>
        setThread((t) =>
          t.map((m) => (m.localId === item.localId ? { ...m, state: "failed", error: e.codeName ?? String(e) } : m)),
        ),
    );
  };

  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    const content = draft.trim();
    if (!client || !active || !content) return;
    setDraft("");
    void client.setTyping(active, false).catch(() => {});
    const item: Item = {
      id: null,
      createdAt: null,
      localId: crypto.randomUUID(),
      from: { role: me.role, id: me.id },
      to: { role: active.role, id: active.id },
      content,
      read: false,
      state: "pending",
    };
    setThread((t) => [...t, item]);
    sendItem(item);
  };

  const onDraft = (value: string) => {
    setDraft(value);
    if (client && active) void client.setTyping(active, value.length > 0).catch(() => {});
  };

  // Conversations with the newest message first, then everyone else by name.
  const ordered = [...peers].sort(
    (a, b) => (last[key(b)]?.createdAt ?? 0) - (last[key(a)]?.createdAt ?? 0) || a.name.localeCompare(b.name),
  );

  return (
    <div className="chat" id="chat" data-status={status}>
      {status === "reconnecting" && (
        <div className="banner" id="banner">
          Connection lost: reconnecting. Messages you send now are kept and sent when it is back.
        </div>
      )}
      {status === "unauthorized" && (
        <div className="banner error" id="banner">
          The chat server refused your sign-in. Sign in again.
        </div>
      )}
      <div className="panes">
        <ul className="contacts">
          {ordered.map((p) => (
            <li
              key={key(p)}
              data-peer={key(p)}
              className={same(p, active) ? "current" : ""}
              onClick={() => setActive(p)}
            >
              <span className={online[key(p)] ? "dot online" : "dot"} title={online[key(p)] ? "online" : "offline"} />
              <span className="name">
                {p.name} <small>{p.role}</small>
                <span className="preview">
                  {last[key(p)] ? `${same(last[key(p)].from, me) ? "You: " : ""}${last[key(p)].content}` : ""}
                </span>
              </span>
              <span className="unread">{unread[key(p)] ? unread[key(p)] : ""}</span>
            </li>
          ))}
        </ul>
        <section className="thread-pane">
          <div className="thread" id="thread" ref={scroller}>
            {!active && <p className="empty">Pick someone to talk to.</p>}
            {older && <div ref={topSentinel} className="older">loading older messages…</div>}
            {thread.map((m) => {
              const mine = same(m.from, me);
              const state = m.state === "stored" ? (mine ? (m.read ? "read" : "sent") : "received") : m.state;
              return (
                <div
                  key={m.localId}
                  className={mine ? "msg mine" : "msg theirs"}
                  data-id={m.id ?? ""}
                  data-state={state}
                  onClick={m.state === "failed" ? () => sendItem(m) : undefined}
                >
                  {m.content}
                  <span className="meta">
                    {m.createdAt ? new Date(m.createdAt).toLocaleTimeString() : ""}
                    {state === "pending" && " sending…"}
                    {state === "sent" && " · sent"}
                    {state === "read" && " · read"}
                    {state === "failed" && ` not sent (${m.error}); click to retry`}
                  </span>
                </div>
              );
            })}
          </div>
          <div className="typing" id="typing">
            {typing && active ? `${active.name} is typing…` : ""}
          </div>
          <form onSubmit={submit}>
            <input
              id="composer"
              value={draft}
              onChange={(e) => onDraft(e.target.value)}
              placeholder={active ? `Message ${active.name}` : "Pick someone first"}
              disabled={!active}
              autoComplete="off"
            />
            <button id="send" type="submit" disabled={!active}>
              Send
            </button>
          </form>
        </section>
      </div>
    </div>
  );
}
