"use client";
import { sameUser, useConversations, usePresence, userKey } from "chat-sdk/react";
import type { Person } from "./Chat";

/** Everyone this user may message: online dot, last message, unread count; the newest conversation first. */
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
    <ul className="contacts">
      {ordered.map((p) => {
        const conversation = byPeer.get(userKey(p));
        const last = conversation?.last;
        // The open conversation is being read as it arrives.
        const unread = sameUser(p, active) ? 0 : (conversation?.unread ?? 0);
        const isOnline = online[userKey(p)] ?? false;
        return (
          <li
            key={userKey(p)}
            data-peer={`${p.role}-${p.id}`}
            className={sameUser(p, active) ? "current" : ""}
            onClick={() => onPick(p)}
          >
            <span className={isOnline ? "dot online" : "dot"} title={isOnline ? "online" : "offline"} />
            <span className="name">
              {p.name} <small>{p.role}</small>
              <span className="preview">{last ? `${sameUser(last.from, me) ? "You: " : ""}${last.content}` : ""}</span>
            </span>
            <span className="unread">{unread ? unread : ""}</span>
          </li>
        );
      })}
    </ul>
  );
}
