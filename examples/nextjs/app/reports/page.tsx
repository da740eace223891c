import { db } from "@/lib/prisma";
import { getSession, isSupervisor } from "@/lib/session";
import { redirect } from "next/navigation";

export const dynamic = "force-dynamic";

// Safeguarding staff's view of what students and teachers reported (chat_report, written by
// chat-server; the webhook CHAT_REPORT_WEBHOOK is how an app alerts staff at once), and of who
// read whose conversations (chat_audit). Read on the server with Prisma.
export default async function Reports() {
  const session = await getSession();
  if (!session) redirect("/");
  if (!isSupervisor(session)) return <p className="error">Only the school&apos;s supervisors can see reports.</p>;
  const [reports, reads, users] = await Promise.all([
    db().chatReport.findMany({ orderBy: { id: "desc" }, take: 50 }),
    db().chatAudit.findMany({ where: { action: "supervisor-read" }, orderBy: { id: "desc" }, take: 20 }),
    db().user.findMany(),
  ]);
  const name = (role: string, id: number) => users.find((u) => u.role === role && u.id === id)?.name ?? `${role} ${id}`;
  return (
    <div className="recent">
      <h1>Reports</h1>
      <table id="reports">
        <thead>
          <tr>
            <th>when (UTC)</th>
            <th>reported by</th>
            <th>written by</th>
            <th>reason</th>
            <th>message</th>
          </tr>
        </thead>
        <tbody>
          {reports.map((r) => (
            <tr key={r.id.toString()}>
              <td>{r.at.toISOString()}</td>
              <td>{name(r.reporterRole, r.reporterId)}</td>
              <td>{name(r.reportedRole, r.reportedId)}</td>
              <td className="reason">{r.reason}</td>
              <td className="content">{r.content}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {reports.length === 0 && <p>No reports.</p>}
      <h2>Recent supervisor reads</h2>
      <ul id="reads">
        {reads.map((a) => (
          <li key={a.id.toString()}>
            {a.at.toISOString()}: {a.actor} {a.detail} of {a.subjectRole && a.subjectId ? name(a.subjectRole, a.subjectId) : "?"}
          </li>
        ))}
      </ul>
    </div>
  );
}
