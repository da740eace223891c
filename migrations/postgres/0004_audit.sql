-- The audit log: what was done with users' data and by whom (exports, purges, erasures;
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
