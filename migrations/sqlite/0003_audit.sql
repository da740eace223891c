-- The index retention deletes by, and the audit log (see migrations/postgres/0004_audit.sql).
CREATE INDEX "Message_createdAt_idx" ON "Message" ("createdAt");

CREATE TABLE chat_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_role TEXT,
    subject_id INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX chat_audit_subject_idx ON chat_audit (subject_role, subject_id, id);
