"use client";
import { useState } from "react";
import type { ConversationState } from "chat-sdk/react";
import type { Person } from "./Chat";

/** The message box: sends on Enter, and tells the peer while something is typed. */
export function Composer({ peer, conversation }: { peer: Person | null; conversation: ConversationState }) {
  const { send, setTyping } = conversation;
  const [draft, setDraft] = useState("");
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    const content = draft.trim();
    if (!peer || !content) return;
    setDraft("");
    send(content);
  };
  return (
    <form className="composer" onSubmit={submit} aria-label="Send a message">
      <label htmlFor="composer" className="visually-hidden">
        {peer ? `Message ${peer.name}` : "Message"}
      </label>
      <input
        id="composer"
        value={draft}
        onChange={(e) => {
          setDraft(e.target.value);
          setTyping(e.target.value.length > 0);
        }}
        placeholder={peer ? `Message ${peer.name}` : "Pick someone first"}
        disabled={!peer}
        autoComplete="off"
      />
      <button id="send" type="submit" disabled={!peer}>
        Send
      </button>
    </form>
  );
}
