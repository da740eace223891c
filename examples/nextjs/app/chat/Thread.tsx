"use client";
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { type ConversationState, type ThreadMessage, sameUser, useChat } from "chat-sdk/react";
import type { UserRef } from "chat-sdk";
import type { Person } from "./Chat";
import { type Ask, AskDialog } from "./Dialog";

/** How long after sending the server lets a sender edit or delete (its CHAT_EDIT_WINDOW, 15 minutes by default). */
const EDIT_WINDOW_MS = 15 * 60 * 1000;

/** A time as people read it, in a <time> element carrying the exact instant. */
function When({ at }: { at: number }) {
  const date = new Date(at);
  const today = date.toDateString() === new Date().toDateString();
  const text = today
    ? date.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" })
    : date.toLocaleString([], { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  return <time dateTime={date.toISOString()}>{text}</time>;
}

/**
 * The open conversation: a keyboard-focusable region (it scrolls), older pages loaded when the
 * "Load older messages" button scrolls into view or is pressed; the view follows new messages.
 */
export function Thread({
  me,
  peer,
  conversation,
  nameOf,
}: {
  me: Person;
  peer: Person | null;
  conversation: ConversationState;
  nameOf: (u: UserRef) => string;
}) {
  const { messages, hasOlder, loadOlder, retry, peerTyping } = conversation;
  const { client } = useChat();
  const [notice, setNotice] = useState("");
  const [ask, setAsk] = useState<Ask | null>(null);
  // Every refusal comes with the server's sentence: show it as it is.
  const run = (what: Promise<void>, done: string) =>
    what.then(
      () => setNotice(done),
      (e: Error) => setNotice(e.message),
    );
  const edit = (m: ThreadMessage) =>
    setAsk({
      title: "Edit your message",
      field: { label: "New text", initial: m.content },
      confirm: "Save",
      onConfirm: (text) => {
        if (client && m.id && text !== m.content) void run(client.editMessage(m.id, text), "Edited.");
      },
    });
  const remove = (m: ThreadMessage) =>
    setAsk({
      title: "Delete this message for both of you?",
      confirm: "Delete",
      onConfirm: () => {
        if (client && m.id) void run(client.deleteMessage(m.id), "Deleted.");
      },
    });
  const report = (m: ThreadMessage) =>
    setAsk({
      title: "Report this message",
      field: { label: "Why are you reporting it? Staff will see it.", initial: "" },
      confirm: "Report",
      onConfirm: (reason) => {
        if (client && m.id) void run(client.report(m.id, reason), "Reported to staff. Thank you.");
      },
    });
  const scroller = useRef<HTMLDivElement>(null);
  const olderButton = useRef<HTMLButtonElement>(null);
  const firstShown = useRef<string | null>(null);
  const keepScroll = useRef<number | null>(null);
  const older = () => {
    const el = scroller.current;
    keepScroll.current = el ? el.scrollHeight - el.scrollTop : null;
    void loadOlder();
  };

  // Infinite scroll: when the top of the thread comes into view, load the page before it.
  useEffect(() => {
    const sentinel = olderButton.current;
    if (!sentinel || !hasOlder) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries[0]?.isIntersecting) older();
      },
      { root: scroller.current },
    );
    observer.observe(sentinel);
    return () => observer.disconnect();
    // eslint-disable-next-line react-hooks/exhaustive-deps
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
    // The older-messages button went away under the keyboard: keep the focus in the thread.
    if (document.activeElement === document.body && !hasOlder) el.focus();
  }, [messages, hasOlder]);

  return (
    <>
      <div
        className="thread"
        id="thread"
        ref={scroller}
        tabIndex={0}
        role="region"
        aria-label={peer ? `Messages with ${peer.name}` : "Messages"}
      >
        {!peer && <p className="empty">Pick someone to talk to.</p>}
        {peer && hasOlder && (
          <button type="button" ref={olderButton} id="older" className="older quiet small" onClick={older}>
            Load older messages
          </button>
        )}
        {peer && (
          <ol className="messages">
            {messages.map((m) => {
              const mine = sameUser(m.from, me);
              const state = m.state === "stored" ? (mine ? (m.read ? "read" : "sent") : "received") : m.state;
              return (
                <li key={m.localId} className={mine ? "msg mine" : "msg theirs"} data-id={m.id ?? ""} data-state={state}>
                  <span className="visually-hidden">{mine ? "You: " : `${nameOf(m.from)}: `}</span>
                  {m.deleted ? <em className="deleted">message deleted</em> : m.content}
                  <span className="meta">
                    {m.createdAt ? <When at={m.createdAt} /> : null}
                    {m.edited && " · edited"}
                    {state === "pending" && " sending…"}
                    {state === "sent" && " · sent"}
                    {state === "read" && " · read"}
                    {state === "failed" && ` not sent (${m.error})`}
                  </span>
                  {m.state === "failed" && (
                    <span className="actions">
                      <button type="button" data-action="retry" onClick={() => retry(m.localId)}>
                        Retry sending
                      </button>
                    </span>
                  )}
                  {m.state === "stored" && !m.deleted && (
                    <span className="actions">
                      {mine && m.createdAt !== null && Date.now() - m.createdAt < EDIT_WINDOW_MS && (
                        <>
                          <button type="button" data-action="edit" onClick={() => edit(m)}>
                            Edit<span className="visually-hidden"> your message</span>
                          </button>
                          <button type="button" data-action="delete" onClick={() => remove(m)}>
                            Delete<span className="visually-hidden"> your message</span>
                          </button>
                        </>
                      )}
                      {!mine && (
                        <button type="button" data-action="report" onClick={() => report(m)}>
                          Report<span className="visually-hidden"> this message</span>
                        </button>
                      )}
                    </span>
                  )}
                </li>
              );
            })}
          </ol>
        )}
      </div>
      <p className="notice" id="notice" role="status">
        {notice}
      </p>
      {/* Shown, never announced: a screen reader would hear every pause of the other person. */}
      <p className="typing" id="typing">
        {peerTyping && peer ? `${peer.name} is typing…` : ""}
      </p>
      <AskDialog ask={ask} onClose={() => setAsk(null)} />
    </>
  );
}
