"use client";
import { useEffect, useLayoutEffect, useRef } from "react";
import { type ConversationState, sameUser } from "chat-sdk/react";
import type { Person } from "./Chat";

/** The open conversation: older pages load as the top scrolls into view; the view follows new messages. */
export function Thread({ me, peer, conversation }: { me: Person; peer: Person | null; conversation: ConversationState }) {
  const { messages, hasOlder, loadOlder, retry, peerTyping } = conversation;
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
        {peerTyping && peer ? `${peer.name} is typing…` : ""}
      </div>
    </>
  );
}
