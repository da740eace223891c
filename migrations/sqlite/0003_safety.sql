-- The index retention deletes by, the audit log, blocks and reports (see
-- migrations/postgres/0004_safety.sql).
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

CREATE TABLE chat_block (
    blocker_role TEXT NOT NULL,
    blocker_id INTEGER NOT NULL,
    blocked_role TEXT NOT NULL,
    blocked_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_role, blocker_id, blocked_role, blocked_id)
);
CREATE INDEX chat_block_blocked_idx ON chat_block (blocked_role, blocked_id);

CREATE TABLE chat_report (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    reporter_role TEXT NOT NULL,
    reporter_id INTEGER NOT NULL,
    reported_role TEXT NOT NULL,
    reported_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX chat_report_reporter_idx ON chat_report (reporter_role, reporter_id, id);
CREATE INDEX chat_report_reported_idx ON chat_report (reported_role, reported_id, id);
CREATE INDEX chat_report_at_idx ON chat_report (at);

CREATE TABLE chat_revision (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX chat_revision_message_idx ON chat_revision (message_id, id);
CREATE INDEX chat_revision_at_idx ON chat_revision (at);
