"use client";
import { sameUser, useConversations, usePresence, userKey } from "chat-sdk/react";
import type { Person } from "./Chat";

/**
 * Everyone this user may message, the newest conversation first: real buttons (keyboard and
 * screen reader), presence and unread counts in words as well as colour.
 */
export function ContactList({
  me,
  peers,
  active,
  onPick,
}: {
  me: Person;
  peers: Person[];
  active: Person | null;
  onPick: (peer: Person) => void;
}) {
  const { conversations } = useConversations();
  const online = usePresence(peers);
  const byPeer = new Map(conversations.map((c) => [userKey(c.peer), c]));
  const ordered = [...peers].sort(
    (a, b) =>
      (byPeer.get(userKey(b))?.last.createdAt ?? 0) - (byPeer.get(userKey(a))?.last.createdAt ?? 0) ||
      a.name.localeCompare(b.name),
  );
  return (
    <nav className="contacts-nav" aria-labelledby="contacts-title">
      <h2 id="contacts-title">Conversations</h2>
      <ul className="contacts">
        {ordered.map((p) => {
          const conversation = byPeer.get(userKey(p));
          const last = conversation?.last;
          // The open conversation is being read as it arrives.
          const unread = sameUser(p, active) ? 0 : (conversation?.unread ?? 0);
          const isOnline = online[userKey(p)] ?? false;
          return (
            <li key={userKey(p)}>
              <button
                type="button"
                data-peer={`${p.role}-${p.id}`}
                aria-current={sameUser(p, active) ? "true" : undefined}
                onClick={() => onPick(p)}
              >
                <span className={isOnline ? "dot online" : "dot"} aria-hidden="true" />
                <span className="name">
                  {p.name}{" "}
                  <small>
                    {p.role} · {isOnline ? "online" : "offline"}
                  </small>
                  <span className="preview">
                    {last ? `${sameUser(last.from, me) ? "You: " : ""}${last.content || "message deleted"}` : ""}
                  </span>
                </span>
                <span className="unread">
                  {unread ? (
                    <>
                      {unread}
                      <span className="visually-hidden"> unread</span>
                    </>
                  ) : (
                    ""
                  )}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
