"use client";
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { type ConversationState, type ThreadMessage, sameUser, useChat } from "chat-sdk/react";
import type { Person } from "./Chat";

/** The open conversation: older pages load as the top scrolls into view; the view follows new messages. */
/** How long after sending the server lets a sender edit or delete (its CHAT_EDIT_WINDOW, 15 minutes by default). */
const EDIT_WINDOW_MS = 15 * 60 * 1000;

export function Thread({ me, peer, conversation }: { me: Person; peer: Person | null; conversation: ConversationState }) {
  const { messages, hasOlder, loadOlder, retry, peerTyping } = conversation;
  const { client } = useChat();
  const [notice, setNotice] = useState("");
  // Every refusal comes with the server's sentence: show it as it is.
  const run = (what: Promise<void>, done: string) =>
    what.then(
      () => setNotice(done),
      (e: Error) => setNotice(e.message),
    );
  const edit = (m: ThreadMessage) => {
    const text = window.prompt("Edit your message", m.content)?.trim();
    if (client && m.id && text && text !== m.content) void run(client.editMessage(m.id, text), "Edited.");
  };
  const remove = (m: ThreadMessage) => {
    if (client && m.id && window.confirm("Delete this message for both of you?")) {
      void run(client.deleteMessage(m.id), "Deleted.");
    }
  };
  const report = (m: ThreadMessage) => {
    const reason = window.prompt("Why are you reporting this message? Staff will see it.")?.trim();
    if (client && m.id && reason) void run(client.report(m.id, reason), "Reported to staff. Thank you.");
  };
  const scroller = useRef<HTMLDivElement>(null);
  const topSentinel = useRef<HTMLDivElement>(null);
  const firstShown = useRef<string | null>(null);
  const keepScroll = useRef<number | null>(null);

  // Infinite scroll: when the top of the thread comes into view, load the page before it.
  useEffect(() => {
    const sentinel = topSentinel.current;
    if (!sentinel || !hasOlder) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (!entries[0]?.isIntersecting) return;
        const el = scroller.current;
        keepScroll.current = el ? el.scrollHeight - el.scrollTop : null;
        void loadOlder();
      },
      { root: scroller.current },
    );
    observer.observe(sentinel);
    return () => observer.disconnect();
  }, [hasOlder, loadOlder]);

  // Keep the view where it was after older messages were prepended; else follow the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const first = messages[0]?.localId ?? null;
    const prepended = keepScroll.current !== null && first !== firstShown.current;
    firstShown.current = first;
    if (prepended && keepScroll.current !== null) {
      el.scrollTop = el.scrollHeight - keepScroll.current;
      keepScroll.current = null;
    } else {
      el.scrollTop = el.scrollHeight;
    }
  }, [messages]);

  return (
    <>
      <div className="thread" id="thread" ref={scroller}>
        {!peer && <p className="empty">Pick someone to talk to.</p>}
        {hasOlder && (
          <div ref={topSentinel} className="older">
            loading older messages…
          </div>
        )}
        {messages.map((m) => {
          const mine = sameUser(m.from, me);
          const state = m.state === "stored" ? (mine ? (m.read ? "read" : "sent") : "received") : m.state;
          return (
            <div
              key={m.localId}
              className={mine ? "msg mine" : "msg theirs"}
              data-id={m.id ?? ""}
              data-state={state}
              onClick={m.state === "failed" ? () => retry(m.localId) : undefined}
            >
              {m.deleted ? <em className="deleted">message deleted</em> : m.content}
              <span className="meta">
                {m.createdAt ? new Date(m.createdAt).toLocaleTimeString() : ""}
                {m.edited && " · edited"}
                {state === "pending" && " sending…"}
                {state === "sent" && " · sent"}
                {state === "read" && " · read"}
                {state === "failed" && ` not sent (${m.error}); click to retry`}
              </span>
              {m.state === "stored" && !m.deleted && (
                <span className="actions">
                  {mine && m.createdAt !== null && Date.now() - m.createdAt < EDIT_WINDOW_MS && (
                    <>
                      <button type="button" className="link" data-action="edit" onClick={() => edit(m)}>
                        edit
                      </button>
                      <button type="button" className="link" data-action="delete" onClick={() => remove(m)}>
                        delete
                      </button>
                    </>
                  )}
                  {!mine && (
                    <button type="button" className="link" data-action="report" onClick={() => report(m)}>
                      report
                    </button>
                  )}
                </span>
              )}
            </div>
          );
        })}
      </div>
      <div className="notice" id="notice" role="status">
        {notice}
      </div>
      <div className="typing" id="typing">
        {peerTyping && peer ? `${peer.name} is typing…` : ""}
      </div>
    </>
  );
}
