-- The message log (see migrations/postgres/0003_message_log.sql): the order in which
-- messages were committed. SQLite has one writer at a time, so the insert order is the
-- commit order and a trigger can number rows directly.
CREATE TABLE chat_log (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    sender_role TEXT NOT NULL,
    sender_id INTEGER NOT NULL,
    recipient_role TEXT NOT NULL,
    recipient_id INTEGER NOT NULL
);
CREATE INDEX chat_log_recipient_idx ON chat_log (recipient_role, recipient_id, pos);
CREATE INDEX chat_log_sender_idx ON chat_log (sender_role, sender_id, pos);

CREATE TRIGGER chat_log_insert AFTER INSERT ON "Message"
BEGIN
    INSERT INTO chat_log (message_id, sender_role, sender_id, recipient_role, recipient_id)
    VALUES (NEW.id, NEW."senderRole", NEW."senderId", NEW."recipientRole", NEW."recipientId");
END;
