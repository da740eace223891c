// Type-level test of chat-sdk/react, compiled with `tsc --noEmit` in strict mode: each expected
// error below (ts-expect-error) fails the build if a type degrades to `any`.
import type { ReactElement } from "react";
import type { Conversation, Status, UserRef } from "chat-sdk";
import {
  ChatProvider,
  type ThreadMessage,
  sameUser,
  useChat,
  useChatEvent,
  useConversation,
  useConversations,
  usePresence,
  userKey,
} from "chat-sdk/react";

function Thread({ peer }: { peer: UserRef }): ReactElement {
  const { client, status, user } = useChat();
  const s: Status = status;
  const me: UserRef | null = user;
  const { messages, hasOlder, loadOlder, send, retry, peerTyping, setTyping } = useConversation(peer, { pageSize: 20 });
  const first: ThreadMessage | undefined = messages[0];
  const state: "pending" | "failed" | "stored" | undefined = first?.state;
  const more: boolean = hasOlder;
  const typing: boolean = peerTyping;
  void loadOlder().then(() => undefined);
  send("hi");
  retry(first?.localId ?? "");
  setTyping(true);
  const { conversations, loading }: { conversations: Conversation[]; loading: boolean } = useConversations();
  const online: Record<string, boolean> = usePresence([peer]);
  useChatEvent("message", (e) => {
    const live: boolean = e.live;
    void live;
  });
  // @ts-expect-error: not an event of the client
  useChatEvent("nothing", () => {});
  // @ts-expect-error: content is a string
  send(42);
  const key: string = userKey(peer);
  const same: boolean = sameUser(peer, me);
  void [client, s, state, more, typing, conversations, loading, online, key, same];
  return <p>{messages.length}</p>;
}

export function App(): ReactElement {
  return (
    <ChatProvider url="http://localhost:4000" tokenUrl="/api/chat-token">
      <Thread peer={{ role: "student", id: 1 }} />
    </ChatProvider>
  );
}

// @ts-expect-error: the provider needs the server's url
export const missing = <ChatProvider />;
