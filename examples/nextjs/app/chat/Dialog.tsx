"use client";
import { useEffect, useRef, useState } from "react";

export interface Ask {
  title: string;
  /** A text to ask for (edit, report): the field's label; none for a yes/no question. */
  field?: { label: string; initial: string };
  confirm: string;
  /** Called with the text (or "" for a yes/no question) when confirmed. */
  onConfirm: (text: string) => void;
}

/**
 * A modal question (the browser's <dialog>, opened with showModal: the rest of the page is inert,
 * Escape cancels). The focus goes to its field (or its confirm button) and comes back to the
 * control that opened it when it closes, whichever way.
 */
export function AskDialog({ ask, onClose }: { ask: Ask | null; onClose: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const opener = useRef<HTMLElement | null>(null);
  const [text, setText] = useState("");
  useEffect(() => {
    const el = dialog.current;
    if (!el) return;
    if (ask && !el.open) {
      opener.current = document.activeElement as HTMLElement | null;
      setText(ask.field?.initial ?? "");
      // The field when there is one; else the dialog's first button (Cancel: the safe answer).
      el.showModal();
      el.querySelector("textarea")?.focus();
    } else if (!ask && el.open) {
      el.close();
    }
  }, [ask]);
  const closed = () => {
    onClose();
    const back = opener.current;
    opener.current = null;
    // The opener may have been re-rendered away (a message deleted): then the thread.
    if (back?.isConnected) back.focus();
    else document.getElementById("thread")?.focus();
  };
  return (
    <dialog ref={dialog} id="ask" aria-labelledby="ask-title" onClose={closed}>
      {ask && (
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            const value = text.trim();
            if (ask.field && !value) return;
            ask.onConfirm(value);
            dialog.current?.close();
          }}
        >
          <h2 id="ask-title">{ask.title}</h2>
          {ask.field && (
            <>
              <label htmlFor="ask-text">{ask.field.label}</label>
              <textarea id="ask-text" value={text} onChange={(e) => setText(e.target.value)} required />
            </>
          )}
          <div className="buttons">
            <button type="button" className="quiet" onClick={() => dialog.current?.close()}>
              Cancel
            </button>
            <button type="submit" id="ask-confirm">
              {ask.confirm}
            </button>
          </div>
        </form>
      )}
    </dialog>
  );
}
