"use client";
import { useCallback, useEffect, useState } from "react";
import { ChatProvider, useAnnouncements, useChat, useConversation, userKey } from "chat-sdk/react";
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
  const { status, reason } = useChat();
  const [active, setActive] = useState<Person | null>(null);
  // On a phone one pane shows at a time: the list, or the open conversation.
  const [pane, setPane] = useState<"list" | "thread">("list");
  const conversation = useConversation(active);
  const nameOf = useCallback(
    (u: UserRef) => [me, ...peers].find((p) => p.role === u.role && p.id === u.id)?.name ?? `${u.role} ${u.id}`,
    [me, peers],
  );
  // What a screen reader hears, computed by the SDK: new messages once, failures at once.
  const said = useAnnouncements({ peer: active, nameOf, messages: conversation.messages });

  const pick = (peer: Person) => {
    setActive(peer);
    setPane("thread");
  };
  // Opening a conversation puts the keyboard in its message box.
  useEffect(() => {
    if (active) document.getElementById("composer")?.focus();
  }, [active]);
  const back = () => {
    setPane("list");
    // Back where the keyboard was: the conversation's entry in the list.
    requestAnimationFrame(() => {
      if (active) document.querySelector<HTMLElement>(`[data-peer="${active.role}-${active.id}"]`)?.focus();
    });
  };

  return (
    <div className="chat" id="chat" data-status={status} data-pane={pane}>
      {status === "reconnecting" && (
        <div className="banner" id="banner">
          Connection lost: reconnecting. Messages you send now are kept and sent when it is back.
        </div>
      )}
      {status === "unauthorized" && (
        <div className="banner error" id="banner">
          The chat server refused your sign-in. Sign out and sign in again.
        </div>
      )}
      {status === "refused" && (
        <div className="banner error" id="banner">
          The chat cannot connect: {reason}
        </div>
      )}
      <div id="say-polite" className="visually-hidden" role="status">
        {said.polite}
      </div>
      <div id="say-alert" className="visually-hidden" role="alert">
        {said.assertive}
      </div>
      <div className="panes">
        <ContactList me={me} peers={peers} active={active} onPick={pick} />
        <section className="thread-pane" aria-labelledby="thread-title">
          <ThreadBar me={me} peer={active} onBack={back} />
          <Thread me={me} peer={active} conversation={conversation} nameOf={nameOf} />
          <Composer peer={active} conversation={conversation} />
        </section>
      </div>
    </div>
  );
}

/**
 * The open conversation's title, the way back to the list (phones), and block (a teacher's
 * "mute") or lift it. What a role may block is the school's policy, enforced by chat-server: a
 * refusal is shown with the server's reason.
 */
function ThreadBar({ me, peer, onBack }: { me: Person; peer: Person | null; onBack: () => void }) {
  const { client, status } = useChat();
  const [blocked, setBlocked] = useState<boolean | null>(null);
  const [why, setWhy] = useState("");
  useEffect(() => {
    if (!client || status !== "open" || !peer) return;
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
    if (!client || blocked === null || !peer) return;
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
      <button type="button" className="back quiet" id="back" onClick={onBack}>
        ← Conversations
      </button>
      <h2 id="thread-title">{peer ? peer.name : "No conversation open"}</h2>
      {peer && (
        <button
          type="button"
          id="block"
          className="small quiet"
          disabled={blocked === null}
          aria-pressed={blocked ?? undefined}
          key={userKey(peer)}
          onClick={toggle}
        >
          {blocked ? `Un${word} ${peer.name}` : `${word[0].toUpperCase()}${word.slice(1)} ${peer.name}`}
        </button>
      )}
      {why && (
        <p className="error" role="alert">
          {why}
        </p>
      )}
    </div>
  );
}
