import { db } from "@/lib/prisma";
import { getSession, isSupervisor } from "@/lib/session";
import { redirect } from "next/navigation";
import { When } from "../When";

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
      <div className="table-scroll" tabIndex={0} role="region" aria-labelledby="reports-caption">
      <table id="reports">
        <caption id="reports-caption">What students and teachers reported, newest first</caption>
        <thead>
          <tr>
            <th scope="col">when</th>
            <th scope="col">reported by</th>
            <th scope="col">written by</th>
            <th scope="col">reason</th>
            <th scope="col">message</th>
          </tr>
        </thead>
        <tbody>
          {reports.map((r) => (
            <tr key={r.id.toString()}>
              <td>
                <When at={r.at} />
              </td>
              <td>{name(r.reporterRole, r.reporterId)}</td>
              <td>{name(r.reportedRole, r.reportedId)}</td>
              <td className="reason">{r.reason}</td>
              <td className="content">{r.content}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      {reports.length === 0 && <p>No reports.</p>}
      <h2>Recent supervisor reads</h2>
      <ul id="reads">
        {reads.map((a) => (
          <li key={a.id.toString()}>
            <When at={a.at} />: {a.actor} {a.detail} of {a.subjectRole && a.subjectId ? name(a.subjectRole, a.subjectId) : "?"}
          </li>
        ))}
      </ul>
    </div>
  );
}
