-- Safety and compliance. The audit log: what was done with users' data and by whom (exports, purges, erasures;
-- supervisors' reads). Nothing chat-server does removes a row from it: an erasure leaves
-- its own record here. Holds ids, never message text. A separate table, so "Message" keeps
-- exactly the columns Prisma creates; the matching Prisma model is in the README ("Safety
-- and compliance"). Idempotent (`chat-server setup` runs it every time).
--
-- `at` is UTC in a TIMESTAMP(3) without time zone, as Prisma stores DateTime.
CREATE TABLE IF NOT EXISTS chat_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    actor text NOT NULL,
    action text NOT NULL,
    subject_role text,
    subject_id integer,
    detail text NOT NULL
);
-- A user's records (an export lists every entry about its user).
CREATE INDEX IF NOT EXISTS chat_audit_subject_idx ON chat_audit (subject_role, subject_id, id);

-- Blocks: the blocker no longer hears from the blocked user, and the other way round (a
-- teacher's block is what the SDK calls a mute). Which role may block which is the server's
-- policy (CHAT_BLOCKING).
CREATE TABLE IF NOT EXISTS chat_block (
    blocker_role text NOT NULL,
    blocker_id integer NOT NULL,
    blocked_role text NOT NULL,
    blocked_id integer NOT NULL,
    created_at timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    PRIMARY KEY (blocker_role, blocker_id, blocked_role, blocked_id)
);
-- "Has this user been blocked by the one they write to": the other direction.
CREATE INDEX IF NOT EXISTS chat_block_blocked_idx ON chat_block (blocked_role, blocked_id);

-- Reports: a message a user received, reported to staff with a reason. The text is copied
-- as it was when reported (the evidence stays if the message is edited or deleted later).
CREATE TABLE IF NOT EXISTS chat_report (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    message_id text NOT NULL,
    reporter_role text NOT NULL,
    reporter_id integer NOT NULL,
    reported_role text NOT NULL,
    reported_id integer NOT NULL,
    reason text NOT NULL,
    content text NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_report_reporter_idx ON chat_report (reporter_role, reporter_id, id);
CREATE INDEX IF NOT EXISTS chat_report_reported_idx ON chat_report (reported_role, reported_id, id);
CREATE INDEX IF NOT EXISTS chat_report_at_idx ON chat_report (at);

-- Revisions: the text a message had before each edit or deletion by its sender ("Message"
-- holds the current text, empty once deleted). Nothing a user does erases evidence: exports
-- list these; only a purge or an erasure removes them.
CREATE TABLE IF NOT EXISTS chat_revision (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL,
    at timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
    kind text NOT NULL,
    content text NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_revision_message_idx ON chat_revision (message_id, id);
CREATE INDEX IF NOT EXISTS chat_revision_at_idx ON chat_revision (at);
