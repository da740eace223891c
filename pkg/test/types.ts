// Type-level test of the published declarations: compiled with `tsc --noEmit` in strict
// mode. The @ts-expect-error lines fail the build if a type degrades to `any`.
import init, { ChatClient } from "chat-sdk";
import type { ChatError, Conversation, Cursor, HistoryPage, Message, Revision, Status, UserRef } from "chat-sdk";

export async function usage(): Promise<void> {
  await init();
  const client = new ChatClient({ url: "http://localhost:4000", getToken: async () => "token" });
  client.connect();
  const peer: UserRef = { role: "student", id: 1 };
  const sent: Message = await client.send(peer, "hi");
  const at: number = sent.createdAt;
  const page: HistoryPage = await client.history(peer, { limit: 20 });
  const newest: HistoryPage = await client.history(peer);
  const next: Cursor | null = page.next;
  const older: HistoryPage = await client.history(peer, { before: next });
  const list: Conversation[] = await client.conversations();
  const unread: number = list[0].unread;
  const changed: number = await client.markRead(peer, { at, id: sent.id });
  await client.setTyping(peer, true);
  const online: UserRef[] = await client.watchPresence([peer]);
  await client.block(peer);
  await client.unblock(peer);
  const blocked: UserRef[] = await client.blocks();
  await client.report(sent.id, "it was unkind");
  await client.editMessage(sent.id, "fixed a typo");
  await client.deleteMessage(sent.id);
  client.on("changed", (e) => {
    const deleted: boolean = e.deleted;
    const text: string = e.message.content;
    void deleted;
    void text;
  });
  const theirs: Conversation[] = await client.superviseConversations(peer);
  const read: HistoryPage = await client.superviseHistory(peer, theirs[0].peer, { limit: 20 });
  const earlier: Revision[] = await client.superviseRevisions(peer, sent.id);
  const wasDeleted: boolean = earlier[0].deleted;
  void wasDeleted;
  void read;
  void blocked;
  const status: Status = client.status;
  const off: () => void = client.on("message", (e) => {
    const live: boolean = e.live;
    const text: string = e.message.content;
    void live;
    void text;
  });
  client.on("read", (e) => void e.upTo.at);
  client.on("typing", (e) => void e.from.role);
  client.on("presence", (e) => void e.online);
  client.on("status", (e) => void e.code);
  client.on("caughtUp", (e) => void e.count);
  off();
  try {
    await client.send(peer, "x");
  } catch (e) {
    const error = e as ChatError;
    const code: number = error.code;
    void code;
  }
  void [older, newest, unread, changed, online, status];

  // @ts-expect-error: unknown event names are rejected
  client.on("mesage", () => {});
  // @ts-expect-error: roles are "teacher" | "student"
  await client.send({ role: "parent", id: 1 }, "hi");
  // @ts-expect-error: the content is a string
  await client.send(peer, 42);
  // @ts-expect-error: getToken is required
  new ChatClient({ url: "http://localhost:4000" });
  client.close();
}
