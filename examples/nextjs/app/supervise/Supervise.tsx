"use client";
import { useState } from "react";
import { ChatProvider, useChat } from "chat-sdk/react";
import type { Conversation, Message, Revision, UserRef } from "chat-sdk";

type Student = UserRef & { name: string };

/** A supervisor's read-only view of one student's conversations (each read audited by chat-server). */
export function Supervise({
  socketUrl,
  me,
  students,
  names,
}: {
  socketUrl: string;
  me: UserRef;
  students: Student[];
  names: Record<string, string>;
}) {
  return (
    <ChatProvider url={socketUrl} tokenUrl="/api/chat-token" user={me}>
      <SuperviseView students={students} names={names} />
    </ChatProvider>
  );
}

function SuperviseView({ students, names }: { students: Student[]; names: Record<string, string> }) {
  const { client, status } = useChat();
  const [student, setStudent] = useState<Student | null>(null);
  const [conversations, setConversations] = useState<Conversation[]>([]);
  const [messages, setMessages] = useState<Message[]>([]);
  const [error, setError] = useState("");
  const [earlier, setEarlier] = useState<Record<string, Revision[]>>({});
  const name = (u: UserRef) => names[`${u.role}-${u.id}`] ?? `${u.role} ${u.id}`;
  const pickStudent = (s: Student) => {
    setStudent(s);
    setMessages([]);
    setError("");
    client?.superviseConversations(s).then(setConversations, (e: Error) => setError(e.message));
  };
  const showEarlier = (id: string) => {
    if (!student) return;
    client?.superviseRevisions(student, id).then(
      (revisions) => setEarlier((e) => ({ ...e, [id]: revisions })),
      (e: Error) => setError(e.message),
    );
  };
  const openConversation = (peer: UserRef) => {
    if (!student) return;
    client?.superviseHistory(student, peer, { limit: 50 }).then(
      (page) => setMessages([...page.messages].reverse()),
      (e: Error) => setError(e.message),
    );
  };
  return (
    <div className="supervise" id="supervise" data-status={status}>
      <nav aria-label="Students">
      <ul>
        {students.map((s) => (
          <li key={s.id}>
            <button type="button" data-student={s.id} onClick={() => pickStudent(s)} disabled={status !== "open"}>
              {s.name}
            </button>
          </li>
        ))}
      </ul>
      </nav>
      <section aria-label={student ? `${student.name}'s conversations` : "Conversations"}>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {!student && <p>Pick a student.</p>}
        {student && (
          <>
            <h2>{student.name}&apos;s conversations</h2>
            <ul id="supervised-conversations">
              {conversations.map((c) => (
                <li key={`${c.peer.role}-${c.peer.id}`}>
                  <button type="button" data-peer={`${c.peer.role}-${c.peer.id}`} onClick={() => openConversation(c.peer)}>
                    {name(c.peer)}: {c.last.content === "" ? "(deleted)" : c.last.content}
                  </button>
                </li>
              ))}
              {conversations.length === 0 && <li>No conversations.</li>}
            </ul>
            <div id="supervised-thread">
              {messages.map((m) => (
                <p key={m.id} className="supervised-message">
                  <strong>{name(m.from)}</strong> (<time dateTime={new Date(m.createdAt).toISOString()}>{new Date(m.createdAt).toLocaleString()}</time>):{" "}
                  {m.content === "" ? <em>deleted by its sender</em> : m.content}{" "}
                  <button type="button" className="small quiet" data-earlier={m.id} onClick={() => showEarlier(m.id)}>
                    earlier texts
                  </button>
                  {earlier[m.id]?.map((r) => (
                    <span key={r.at} className="earlier">
                      {r.deleted ? "deleted" : "edited"}{" "}
                      <time dateTime={new Date(r.at).toISOString()}>{new Date(r.at).toLocaleString()}</time>; before: {r.before}
                    </span>
                  ))}
                  {earlier[m.id]?.length === 0 && <span className="earlier">never edited</span>}
                </p>
              ))}
            </div>
          </>
        )}
      </section>
    </div>
  );
}
