// Unit tests of the package's pure TypeScript (node:test, on the built dist/): what needs no
// browser. Run by scripts/browser-tests.sh after the build.
import assert from "node:assert/strict";
import { test } from "node:test";
import { websocketUrl } from "../dist/connection.js";

test("the guide's socket URL maps to the WebSocket endpoint, as the native client maps it", () => {
  // The cases of client-wasm/src/url.rs.
  assert.equal(websocketUrl("http://localhost:4000"), "ws://localhost:4000/ws");
  assert.equal(websocketUrl(" http://localhost:4000/ "), "ws://localhost:4000/ws");
  assert.equal(websocketUrl("https://chat.school.example"), "wss://chat.school.example/ws");
  assert.equal(websocketUrl("https://school.example/chat"), "wss://school.example/chat/ws");
  assert.equal(websocketUrl("https://school.example/chat/?x=1#y"), "wss://school.example/chat/ws");
  assert.equal(websocketUrl("ws://127.0.0.1:9/ws"), "ws://127.0.0.1:9/ws");
  assert.equal(websocketUrl("http://h:1/ws"), "ws://h:1/ws");
  assert.throws(() => websocketUrl("localhost:4000"), { name: "TypeError", message: /must start with http:\/\// });
  assert.throws(() => websocketUrl("http://"), { name: "TypeError", message: /no host/ });
  assert.throws(() => websocketUrl("https:///chat"), { name: "TypeError", message: /no host/ });
});

// The screen-reader announcements (chat-sdk/announce): what a live region says, and what it does not.
import { Announcer, LiveText } from "../dist/announce.js";

const T1 = { role: "teacher", id: 1 };
const S1 = { role: "student", id: 1 };
const S2 = { role: "student", id: 2 };
const names = { "teacher:1": "Ms. Rivera", "student:1": "Ada", "student:2": "Ben" };
const nameOf = (u) => names[`${u.role}:${u.id}`];
let n = 0;
const msg = (from, to, content) => ({ id: `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`, from, to, content, createdAt: n, read: false });

test("a live message in the open conversation is read out once, in full; one elsewhere is named", () => {
  const a = new Announcer({ me: T1, nameOf });
  a.setOpen(S1);
  const m = msg(S1, T1, "Is the  homework\ndue Friday?");
  assert.deepEqual(a.message(m, true), { politeness: "polite", text: "Ada: Is the homework due Friday?" });
  // The same message again (another tab relayed it, a catch-up repeats it): nothing.
  assert.equal(a.message(m, true), null);
  assert.deepEqual(a.message(msg(S2, T1, "hi"), true), { politeness: "polite", text: "New message from Ben" });
});

test("own messages, caught-up messages and deleted ones are not read out; a catch-up is summed up", () => {
  const a = new Announcer({ me: T1, nameOf });
  a.setOpen(S1);
  assert.equal(a.message(msg(T1, S1, "from my other tab"), true), null);
  assert.equal(a.message(msg(S1, T1, "while away"), false), null);
  assert.equal(a.message(msg(S1, T1, ""), true), null);
  assert.deepEqual(a.caughtUp(3), { politeness: "polite", text: "3 new messages while you were away" });
  assert.deepEqual(a.caughtUp(1), { politeness: "polite", text: "1 new message while you were away" });
  assert.equal(a.caughtUp(0), null);
  // Before the server says who we are, nothing is attributed to anyone.
  const b = new Announcer({ me: null, nameOf });
  assert.equal(b.message(msg(S1, T1, "x"), true), null);
});

test("long texts are clipped by characters (not UTF-16 units), with an ellipsis", () => {
  const a = new Announcer({ me: T1, nameOf, maxLength: 12 });
  a.setOpen(S1);
  const said = a.message(msg(S1, T1, "😀".repeat(20)), true);
  assert.equal(said.text, `Ada: ${"😀".repeat(11)}…`);
});

test("a lost connection is said once per outage, its return once; a refusal at once with the server's reason", () => {
  const a = new Announcer({ me: T1, nameOf });
  assert.equal(a.status("connecting"), null);
  assert.equal(a.status("open"), null, "the first connect is not announced");
  assert.match(a.status("reconnecting").text, /^Connection lost: reconnecting/);
  assert.equal(a.status("connecting"), null);
  assert.equal(a.status("reconnecting"), null, "a second failed attempt says nothing more");
  assert.equal(a.status("connecting"), null);
  assert.deepEqual(a.status("open"), { politeness: "polite", text: "Connected again." });
  const why = "this page's origin http://localhost:3100 is not in CHAT_ALLOWED_ORIGINS";
  assert.deepEqual(a.status("refused", why), { politeness: "assertive", text: `The chat cannot connect: ${why}` });
  assert.equal(a.status("unauthorized").politeness, "assertive");
  assert.equal(a.status("closed"), null);
});

test("a failed send is assertive and says to whom, why and what", () => {
  const a = new Announcer({ me: S1, nameOf });
  assert.deepEqual(a.sendFailed(T1, "see you", "one of you has blocked the other"), {
    politeness: "assertive",
    text: 'Your message to Ms. Rivera was not sent: one of you has blocked the other. "see you"',
  });
});

test("live region text changes even when the same sentence comes twice", () => {
  const live = new LiveText();
  const first = live.next("New message from Ben");
  const second = live.next("New message from Ben");
  const third = live.next("New message from Ben");
  assert.notEqual(first, second);
  assert.notEqual(second, third);
  assert.equal(second.trim(), "New message from Ben");
  assert.equal(live.next("Ada: hi"), "Ada: hi");
});

// One conversation's transitions (useConversation's reducer), each on its own.
import { emptyThread, threadReducer } from "../dist/thread.js";

const ME = { role: "teacher", id: 1 };
const PEER = { role: "student", id: 1 };
const stored = (id, at, from = PEER, content = `m${id}`) => ({ id: `id-${id}`, from, to: from === ME ? PEER : ME, content, createdAt: at, read: false });
const run = (...actions) => actions.reduce(threadReducer, emptyThread);
const ids = (state) => state.messages.map((m) => m.id ?? m.localId);

test("the newest page comes oldest first and keeps what arrived or was sent while it was on its way", () => {
  const pending = { localId: "local-1", id: null, from: ME, to: PEER, content: "hi", createdAt: null, read: false, state: "pending" };
  const state = run(
    { type: "queued", item: pending },
    { type: "message", message: stored(3, 30), fromPeer: true },
    { type: "history", page: [stored(3, 30), stored(2, 20), stored(1, 10)], next: { at: 10, id: "id-1" }, restored: [] },
  );
  assert.deepEqual(ids(state), ["id-1", "id-2", "id-3", "local-1"], "the live copy of id-3 is not kept twice");
  assert.deepEqual(state.older, { at: 10, id: "id-1" });
});

test("sends restored from storage show pending once, not when the page already has them", () => {
  const restored = [
    { localId: "id-9", id: null, from: ME, to: PEER, content: "left over", createdAt: null, read: false, state: "pending" },
    { localId: "id-2", id: null, from: ME, to: PEER, content: "already stored", createdAt: null, read: false, state: "pending" },
  ];
  const state = run({ type: "history", page: [stored(2, 20, ME)], next: null, restored });
  assert.deepEqual(ids(state), ["id-2", "id-9"]);
  assert.equal(state.messages[0].state, "stored");
});

test("a send goes pending, then stored in time order under its local id; a live echo of it is not kept twice", () => {
  const item = { localId: "local-1", id: null, from: ME, to: PEER, content: "hello", createdAt: null, read: false, state: "pending" };
  const echo = stored(5, 15, ME, "hello");
  const state = run(
    { type: "history", page: [stored(2, 20), stored(1, 10)], next: null, restored: [] },
    { type: "queued", item },
    { type: "message", message: echo, fromPeer: false },
    { type: "stored", localId: "local-1", message: echo },
  );
  assert.deepEqual(ids(state), ["id-1", "id-5", "id-2"]);
  assert.equal(state.messages[1].localId, "local-1", "the React key stays");
  assert.equal(state.messages[1].state, "stored");
});

test("a refused send fails with its reason and goes pending again on retry", () => {
  const item = { localId: "l", id: null, from: ME, to: PEER, content: "x", createdAt: null, read: false, state: "pending" };
  let state = run({ type: "queued", item }, { type: "failed", localId: "l", error: "blocked" });
  assert.equal(state.messages[0].state, "failed");
  assert.equal(state.messages[0].error, "blocked");
  state = threadReducer(state, { type: "sending", localId: "l" });
  assert.equal(state.messages[0].state, "pending");
  assert.equal(state.messages[0].error, undefined);
  // A failure reported for a message that is not pending (already stored) changes nothing.
  state = threadReducer(state, { type: "stored", localId: "l", message: stored(7, 70, ME, "x") });
  assert.equal(threadReducer(state, { type: "failed", localId: "l", error: "late" }).messages[0].state, "stored");
});

test("older pages go before, without repeats; typing ends when the peer's message arrives", () => {
  let state = run(
    { type: "history", page: [stored(3, 30), stored(2, 20)], next: { at: 20, id: "id-2" }, restored: [] },
    { type: "typing", on: true },
  );
  assert.equal(state.peerTyping, true);
  state = threadReducer(state, { type: "older", page: [stored(2, 20), stored(1, 10)], next: null });
  assert.deepEqual(ids(state), ["id-1", "id-2", "id-3"]);
  assert.equal(state.older, null);
  state = threadReducer(state, { type: "message", message: stored(4, 40), fromPeer: true });
  assert.equal(state.peerTyping, false);
  assert.equal(threadReducer(state, { type: "typing", on: false }), state, "no change, no new state");
});

test("a read receipt marks my messages up to its cursor only; edits and deletions show", () => {
  let state = run({
    type: "history",
    page: [stored(4, 40, ME), stored(3, 30, PEER), stored(2, 30, ME), stored(1, 10, ME)].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)),
    next: null,
    restored: [],
  });
  state = threadReducer(state, { type: "read", me: ME, upTo: { at: 30, id: "id-2" } });
  const read = Object.fromEntries(state.messages.map((m) => [m.id, m.read]));
  assert.deepEqual(read, { "id-1": true, "id-2": true, "id-3": false, "id-4": false });
  state = threadReducer(state, { type: "changed", message: { ...stored(1, 10, ME), content: "fixed" }, deleted: false });
  assert.equal(state.messages[0].content, "fixed");
  assert.equal(state.messages[0].edited, true);
  state = threadReducer(state, { type: "changed", message: { ...stored(1, 10, ME), content: "" }, deleted: true });
  assert.equal(state.messages[0].deleted, true);
  assert.equal(threadReducer(state, { type: "opened" }), emptyThread);
});
