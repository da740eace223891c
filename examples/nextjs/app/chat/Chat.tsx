"use client";
import { useEffect, useState } from "react";
import { ChatProvider, useChat, useConversation } from "chat-sdk/react";
import type { UserRef } from "chat-sdk";
import { ContactList } from "./ContactList";
import { Thread } from "./Thread";
import { Composer } from "./Composer";

export type Person = UserRef & { name: string };

/**
 * The chat page's client side: one chat-sdk client for the page (ChatProvider: created in the
 * browser only, closed and freed on unmount; tokens from this app's /api/chat-token route;
 * messages not yet acknowledged kept in IndexedDB for this user, sent again after a reload).
 */
export function Chat({ socketUrl, me, peers }: { socketUrl: string; me: Person; peers: Person[] }) {
  return (
    <ChatProvider url={socketUrl} tokenUrl="/api/chat-token" user={{ role: me.role, id: me.id }}>
      <ChatView me={me} peers={peers} />
    </ChatProvider>
  );
}

function ChatView({ me, peers }: { me: Person; peers: Person[] }) {
  const { status } = useChat();
  const [active, setActive] = useState<Person | null>(null);
  const conversation = useConversation(active);
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
        <ContactList me={me} peers={peers} active={active} onPick={setActive} />
        <section className="thread-pane">
          {active && <BlockButton me={me} peer={active} />}
          <Thread me={me} peer={active} conversation={conversation} />
          <Composer peer={active} conversation={conversation} />
        </section>
      </div>
    </div>
  );
}

/**
 * Block (a teacher's "mute") the open conversation's person, or lift it. What a role may block is
 * the school's policy, enforced by chat-server: a refusal is shown with the server's reason.
 */
function BlockButton({ me, peer }: { me: Person; peer: Person }) {
  const { client, status } = useChat();
  const [blocked, setBlocked] = useState<boolean | null>(null);
  const [why, setWhy] = useState("");
  useEffect(() => {
    if (!client || status !== "open") return;
    let live = true;
    client.blocks().then(
      (users) => live && setBlocked(users.some((u) => u.role === peer.role && u.id === peer.id)),
      () => live && setBlocked(null),
    );
    setWhy("");
    return () => {
      live = false;
    };
  }, [client, status, peer]);
  const word = me.role === "teacher" ? "mute" : "block";
  const toggle = () => {
    if (!client || blocked === null) return;
    const next = !blocked;
    (next ? client.block(peer) : client.unblock(peer)).then(
      () => {
        setBlocked(next);
        setWhy("");
      },
      (e: Error) => setWhy(e.message),
    );
  };
  return (
    <div className="thread-bar">
      <strong>{peer.name}</strong>
      <button type="button" id="block" className="small" disabled={blocked === null} onClick={toggle}>
        {blocked ? `Un${word} ${peer.name}` : `${word[0].toUpperCase()}${word.slice(1)} ${peer.name}`}
      </button>
      {why && <span className="error">{why}</span>}
    </div>
  );
}
