import { db } from "@/lib/prisma";
import { When } from "../When";

export const dynamic = "force-dynamic";

// The same rows chat-server wrote, read by Prisma with the sender and recipient resolved
// through users_view by (id, role): teacher 1's messages show the teacher, not student 1.
export default async function RecentMessages() {
  const messages = await db().message.findMany({
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: 50,
    include: { sender: true, recipient: true },
  });
  return (
    <div className="recent">
      <h1>Recent messages</h1>
      <p>Read on the server with Prisma from the Message table chat-server writes to.</p>
      <div className="table-scroll" tabIndex={0} role="region" aria-labelledby="recent-caption">
      <table id="recent">
        <caption id="recent-caption">The 50 newest messages, newest first</caption>
        <thead>
          <tr>
            <th scope="col">when</th>
            <th scope="col">from</th>
            <th scope="col">to</th>
            <th scope="col">message</th>
            <th scope="col">read</th>
          </tr>
        </thead>
        <tbody>
          {messages.map((m) => (
            <tr key={m.id} data-id={m.id}>
              <td>
                <When at={m.createdAt} />
              </td>
              <td className="from">
                {m.sender.name} ({m.sender.role} {m.sender.id})
              </td>
              <td className="to">
                {m.recipient.name} ({m.recipient.role} {m.recipient.id})
              </td>
              <td className="content">{m.content}</td>
              <td>{m.isRead ? "yes" : "no"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
      {messages.length === 0 && <p>No messages yet.</p>}
    </div>
  );
}
