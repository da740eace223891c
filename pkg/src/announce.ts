// What a screen reader should hear, computed once here so every UI built on the SDK gets it
// right: a new message in the open conversation read out politely, once; one in another
// conversation named as such; a send that failed, and a page the server refuses, said at once
// (assertive); a lost and regained connection said once each. Typing is never announced, nor a
// page of history, nor a message this user sent. Pure (no DOM, no React): `useAnnouncements` in
// `chat-sdk/react` wires it to the client's events; an app's own UI can use it directly.
import type { Message, Status, UserRef } from "./types.js";

export type Politeness = "polite" | "assertive";

/** A sentence for a live region: `polite` waits for the reader to finish, `assertive` interrupts. */
export interface Announcement {
  politeness: Politeness;
  text: string;
}

export interface AnnouncerOptions {
  /** Who is signed in: their own messages (from any tab or device) are not read out. */
  me: UserRef | null;
  /** A person's name as the page shows it (default: "teacher 3"). */
  nameOf?: (user: UserRef) => string;
  /** The longest message text read out, in characters; longer ones end with "…" (default 200). */
  maxLength?: number;
}

/** How many message ids are remembered, so that each message is announced once. */
const REMEMBERED = 2_000;

const same = (a: UserRef | null | undefined, b: UserRef | null | undefined): boolean =>
  !!a && !!b && a.role === b.role && a.id === b.id;

export class Announcer {
  #me: UserRef | null;
  #nameOf: (user: UserRef) => string;
  #maxLength: number;
  #open: UserRef | null = null;
  #said = new Set<string>();
  #status: Status = "idle";

  constructor(options: AnnouncerOptions) {
    this.#me = options.me;
    this.#nameOf = options.nameOf ?? ((u) => `${u.role} ${u.id}`);
    this.#maxLength = Math.max(options.maxLength ?? 200, 10);
  }

  /** The signed-in user (once the server says who). */
  setMe(me: UserRef | null): void {
    this.#me = me;
  }

  /** The conversation on screen (null: none). */
  setOpen(peer: UserRef | null): void {
    this.#open = peer;
  }

  /**
   * A `message` event. Live messages from someone else are announced: in full when their
   * conversation is open, else as "New message from …". Caught-up messages (`live` false) are
   * summed up by `caughtUp` instead, so a reconnect does not read out a backlog one by one.
   */
  message(message: Message, live: boolean): Announcement | null {
    if (this.#said.has(message.id)) return null;
    this.#remember(message.id);
    if (!live || !this.#me || same(message.from, this.#me) || message.content === "") return null;
    const name = this.#nameOf(message.from);
    if (same(message.from, this.#open)) {
      return { politeness: "polite", text: `${name}: ${this.#clip(message.content)}` };
    }
    return { politeness: "polite", text: `New message from ${name}` };
  }

  /** A catch-up after a reconnect finished with `count` new messages. */
  caughtUp(count: number): Announcement | null {
    if (count <= 0) return null;
    return { politeness: "polite", text: count === 1 ? "1 new message while you were away" : `${count} new messages while you were away` };
  }

  /** A send to `to` failed: said at once, with what was not sent and why. */
  sendFailed(to: UserRef, content: string, why: string): Announcement {
    return {
      politeness: "assertive",
      text: `Your message to ${this.#nameOf(to)} was not sent: ${why}. "${this.#clip(content)}"`,
    };
  }

  /**
   * A status change. Said: a lost connection (once, not at every retry), its return, and a final
   * refusal with the server's reason. Not said: the first connect, or a close the app made.
   */
  status(status: Status, reason?: string | null): Announcement | null {
    const before = this.#status;
    this.#status = status;
    if (status === before) return null;
    switch (status) {
      case "reconnecting":
        // Said once per outage, not at every failed attempt (connecting, reconnecting, ...).
        if (this.#lost) return null;
        this.#lost = true;
        return { politeness: "polite", text: "Connection lost: reconnecting. Messages you send now are kept and sent when it is back." };
      case "open":
        if (!this.#lost) return null;
        this.#lost = false;
        return { politeness: "polite", text: "Connected again." };
      case "unauthorized":
        return { politeness: "assertive", text: "The chat server refused your sign-in. Sign in again." };
      case "refused":
        return { politeness: "assertive", text: `The chat cannot connect: ${reason ?? "the chat server refuses this page"}` };
      default:
        return null;
    }
  }

  /** Whether a lost connection was announced and its return not yet. */
  #lost = false;

  #remember(id: string): void {
    this.#said.add(id);
    if (this.#said.size > REMEMBERED) this.#said.delete(this.#said.values().next().value as string);
  }

  #clip(text: string): string {
    const flat = text.replace(/\s+/g, " ").trim();
    const chars = Array.from(flat);
    return chars.length <= this.#maxLength ? flat : `${chars.slice(0, this.#maxLength - 1).join("")}…`;
  }
}

/**
 * Live region text that is read again even when it repeats: a screen reader speaks a live
 * region when its text changes, so the same sentence twice in a row ("New message from Ms.
 * Rivera") gets an invisible difference (a no-break space, alternating).
 */
export class LiveText {
  #last = "";
  #flip = false;

  next(text: string): string {
    if (text === this.#last.replace(/\u00a0$/, "")) this.#flip = !this.#flip;
    else this.#flip = false;
    this.#last = this.#flip ? `${text}\u00a0` : text;
    return this.#last;
  }
}
