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

-- Each revision names its message's conversation and when the message was written, so that
-- it belongs to that message alone: an id the app deleted and reused for another
-- conversation does not inherit the old text, an erasure finds the texts of messages the
-- app already deleted, and a purge removes the earlier texts of the messages it removes
-- (whenever they were edited). Rows written before these columns are filled from "Message".
ALTER TABLE chat_revision ADD COLUMN IF NOT EXISTS sender_role text;
ALTER TABLE chat_revision ADD COLUMN IF NOT EXISTS sender_id integer;
ALTER TABLE chat_revision ADD COLUMN IF NOT EXISTS recipient_role text;
ALTER TABLE chat_revision ADD COLUMN IF NOT EXISTS recipient_id integer;
ALTER TABLE chat_revision ADD COLUMN IF NOT EXISTS message_created timestamp(3);
UPDATE chat_revision r
SET sender_role = m."senderRole", sender_id = m."senderId", recipient_role = m."recipientRole",
    recipient_id = m."recipientId", message_created = m."createdAt"
FROM "Message" m
WHERE m.id = r.message_id AND r.sender_role IS NULL;
CREATE INDEX IF NOT EXISTS chat_revision_sender_idx ON chat_revision (sender_role, sender_id);
CREATE INDEX IF NOT EXISTS chat_revision_recipient_idx ON chat_revision (recipient_role, recipient_id);
CREATE INDEX IF NOT EXISTS chat_revision_created_idx ON chat_revision (message_created);

-- Reports reach the webhook from this table (a durable outbox): `webhook_pending` until the
-- webhook took it, retried with backoff after `webhook_next`, never skipped. Reports made
-- before this column existed were offered then: not pending. One report per reporter and
-- message (a repeat is answered as done, and not stored again).
ALTER TABLE chat_report ADD COLUMN IF NOT EXISTS webhook_pending boolean NOT NULL DEFAULT false;
ALTER TABLE chat_report ADD COLUMN IF NOT EXISTS webhook_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE chat_report ADD COLUMN IF NOT EXISTS webhook_next timestamp(3);
CREATE INDEX IF NOT EXISTS chat_report_pending_idx ON chat_report (id) WHERE webhook_pending;
CREATE INDEX IF NOT EXISTS chat_report_message_idx ON chat_report (message_id, reporter_role, reporter_id);

-- Legal holds (`chat-server hold add|list|release`, each audited): a held user's messages, the
-- earlier texts of those messages and the reports they are in are kept whatever retention says,
-- and `erase` refuses while the hold stands. One hold per user; releasing deletes the row (the
-- audit log keeps who placed and released it, when, and why).
CREATE TABLE IF NOT EXISTS chat_hold (
    user_role text NOT NULL,
    user_id integer NOT NULL,
    reason text NOT NULL,
    placed_by text NOT NULL,
    placed_at timestamp(3) NOT NULL,
    PRIMARY KEY (user_role, user_id)
);
