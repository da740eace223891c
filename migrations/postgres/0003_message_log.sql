-- The message log: the order in which messages were committed, whoever wrote them (any
-- chat-server node, or the app itself through Prisma or SQL). Live delivery and catch-up
-- follow it, so a message committed late (a slow node, a skewed clock, an app transaction
-- that ran long) still comes after every position a client has already passed.
--
-- Everything here is a separate object: "Message" keeps exactly the columns Prisma
-- creates. Idempotent (`chat-server setup` runs it every time); needs PostgreSQL 14+.
--
-- How it works (the proof is in ARCHITECTURE.md, "The message log"):
-- 1. A statement-level trigger on "Message" copies every inserted row's id, sender and
--    recipient into chat_inbox, inside the inserting transaction: no lock, no NOTIFY, so
--    the app's inserts and ours stay as cheap and as concurrent as before.
-- 2. chat_log_sequence() moves committed inbox rows into chat_log under an advisory lock,
--    numbering them after the largest position so far. One sequencer runs at a time and
--    commits before the next starts, so positions become visible in increasing order:
--    a reader that sees position p sees every position below p.

CREATE TABLE IF NOT EXISTS chat_inbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL,
    sender_role text NOT NULL,
    sender_id integer NOT NULL,
    recipient_role text NOT NULL,
    recipient_id integer NOT NULL
);

CREATE TABLE IF NOT EXISTS chat_log (
    pos bigint PRIMARY KEY,
    message_id text NOT NULL,
    sender_role text NOT NULL,
    sender_id integer NOT NULL,
    recipient_role text NOT NULL,
    recipient_id integer NOT NULL
);
-- The inbox is a queue: every row is deleted within milliseconds of its insert. Vacuum it
-- after every thousand dead rows instead of after a fifth of the table, so its pages stay few.
ALTER TABLE chat_inbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                            autovacuum_vacuum_cost_delay = 0);
-- A user's catch-up walks these (both directions) from its position on.
CREATE INDEX IF NOT EXISTS chat_log_recipient_idx ON chat_log (recipient_role, recipient_id, pos);
CREATE INDEX IF NOT EXISTS chat_log_sender_idx ON chat_log (sender_role, sender_id, pos);

-- SECURITY DEFINER: the app's database role (Prisma's) needs no grant on chat_inbox; the
-- fixed search_path keeps the definer's rights to these tables alone.
CREATE OR REPLACE FUNCTION chat_log_inbox() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO chat_inbox (message_id, sender_role, sender_id, recipient_role, recipient_id)
    SELECT id, "senderRole", "senderId", "recipientRole", "recipientId" FROM chat_new_rows;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER chat_log_inbox
    AFTER INSERT ON "Message"
    REFERENCING NEW TABLE AS chat_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION chat_log_inbox();

-- Moves what has committed to the inbox (the oldest `max_rows` at most, so a bulk import
-- by the app is sequenced in bounded rounds) into the log and returns those messages in
-- log order. `wait`: wait for a sequencer running elsewhere (false: return nothing if one is
-- running; it takes these rows).
--
-- `notify_channel` and `notify_payload` are ignored: they are kept so that `setup` replaces
-- the function of an earlier version in place. This function once NOTIFYed the other nodes
-- with the round's rows as JSON, which let any role that can connect to the database read
-- every message's text (LISTEN needs no privilege) and forge deliveries (nor does NOTIFY).
-- The nodes now tell each other themselves, sealed under a key the database never sees.
--
-- A log row is read back only while "Message" still holds a row with its id, sender and
-- recipient: an id the app deleted and then reused for another conversation is not the
-- logged message.
CREATE OR REPLACE FUNCTION chat_log_sequence(wait boolean, notify_channel text, notify_payload text,
                                             max_rows integer)
RETURNS TABLE (pos bigint, id text, sender_role text, sender_id integer, recipient_role text,
               recipient_id integer, content text, created_ms bigint, is_read boolean)
LANGUAGE plpgsql SET search_path FROM CURRENT
-- Every statement here reads a few rows by primary key, and must keep doing so whatever the
-- tables' statistics say (a young table has none; autovacuum may be off): no sequential
-- scan (a plan that scanned the whole inbox per round made a 300,000-row backlog take
-- hours), plans made for this call's values, and no JIT (milliseconds to compile what runs
-- in microseconds).
SET enable_seqscan = off SET plan_cache_mode = force_custom_plan SET jit = off AS $$
DECLARE
    base bigint;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(7405324);
    ELSIF NOT pg_try_advisory_xact_lock(7405324) THEN
        RETURN;
    END IF;
    -- Each statement of this (volatile) function takes a fresh snapshot, taken after the
    -- lock: the previous sequencer's positions are all visible here.
    SELECT coalesce(max(l.pos), 0) INTO base FROM chat_log l;
    WITH moved AS (
             DELETE FROM chat_inbox
             WHERE seq = ANY (ARRAY(SELECT i.seq FROM chat_inbox i ORDER BY i.seq LIMIT max_rows))
             RETURNING *)
    INSERT INTO chat_log (pos, message_id, sender_role, sender_id, recipient_role, recipient_id)
    SELECT base + row_number() OVER (ORDER BY m.seq), m.message_id, m.sender_role, m.sender_id,
           m.recipient_role, m.recipient_id
    FROM moved m;
    -- Read back what was just numbered, one index lookup per message whatever the planner
    -- estimates (a plain join, expecting max_rows rows, hashed all of "Message": 45 ms a call
    -- at 70k rows, measured).
    RETURN QUERY
        SELECT l.pos, msg.id, msg."senderRole", msg."senderId", msg."recipientRole", msg."recipientId",
               msg.content, (EXTRACT(EPOCH FROM msg."createdAt") * 1000)::int8, msg."isRead"
        FROM chat_log l
        CROSS JOIN LATERAL (SELECT * FROM "Message" m WHERE m.id = l.message_id LIMIT 1) msg
        -- Compared after the lookup by id, not inside it: the planner would otherwise take the
        -- conversation index and walk every message of the pair (measured: delivery p99 from
        -- 49 ms to 1.3 s under the fault suite's load).
        WHERE l.pos > base
          AND msg."senderRole" = l.sender_role AND msg."senderId" = l.sender_id
          AND msg."recipientRole" = l.recipient_role AND msg."recipientId" = l.recipient_id
        ORDER BY l.pos;
END
$$;
