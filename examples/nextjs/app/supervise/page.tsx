import { redirect } from "next/navigation";
import { db } from "@/lib/prisma";
import { getSession, isSupervisor } from "@/lib/session";
import { Supervise } from "./Supervise";

export const dynamic = "force-dynamic";

// Safeguarding staff only: read any student's conversations, read-only. chat-server checks the
// supervisor claim of the chat token and writes every read to its audit log; this page only
// hides itself from everyone else.
export default async function SupervisePage() {
  const session = await getSession();
  if (!session) redirect("/");
  if (!isSupervisor(session)) {
    return <p className="error">Only the school&apos;s supervisors (CHAT_SUPERVISORS) can read other people&apos;s conversations.</p>;
  }
  const socketUrl = process.env.NEXT_PUBLIC_SOCKET_URL;
  if (!socketUrl) throw new Error("NEXT_PUBLIC_SOCKET_URL is not set (see .env.example)");
  const users = await db().user.findMany({ orderBy: [{ role: "desc" }, { id: "asc" }] });
  const names = Object.fromEntries(users.map((u) => [`${u.role}-${u.id}`, u.name]));
  const students = users.filter((u) => u.role === "student").map((u) => ({ role: "student" as const, id: u.id, name: u.name }));
  return (
    <>
      <h1>Supervision</h1>
      <p className="me">
        Supervision: every conversation you open here is recorded in the chat&apos;s audit log (who read what, and when), and
        shows in the student&apos;s records export.
      </p>
      <Supervise socketUrl={socketUrl} me={session} students={students} names={names} />
    </>
  );
}
