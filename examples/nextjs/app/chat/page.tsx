import { redirect } from "next/navigation";
import { db } from "@/lib/prisma";
import { getSession } from "@/lib/session";
import { Chat, type Person } from "./Chat";

export const dynamic = "force-dynamic";

// Who may message whom mirrors chat-server's default CHAT_POLICY (teacher-student,
// teacher-teacher); the server enforces it whatever the page shows.
const mayMessage = (me: string, other: string) => me === "teacher" || other === "teacher";

export default async function ChatPage() {
  const session = await getSession();
  if (!session) redirect("/");
  const users = await db().user.findMany({ orderBy: [{ role: "desc" }, { id: "asc" }] });
  const me = users.find((u) => u.role === session.role && u.id === session.id);
  if (!me) redirect("/");
  const socketUrl = process.env.NEXT_PUBLIC_SOCKET_URL;
  if (!socketUrl) throw new Error("NEXT_PUBLIC_SOCKET_URL is not set (see .env.example)");
  const person = (u: (typeof users)[number]): Person => ({ role: u.role as Person["role"], id: u.id, name: u.name });
  const peers = users.filter((u) => !(u.role === me.role && u.id === me.id) && mayMessage(me.role, u.role)).map(person);
  return (
    <>
      <h1 className="visually-hidden">Chat</h1>
      <p className="me">
        You are <strong>{me.name}</strong> ({me.role} {me.id})
      </p>
      <Chat socketUrl={socketUrl} me={person(me)} peers={peers} />
    </>
  );
}
