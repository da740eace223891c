-- See migrations/postgres/0004_safety.sql (its end): revisions name their message's
-- conversation and creation time; reports reach the webhook from the table, one per
-- reporter and message.
ALTER TABLE chat_revision ADD COLUMN sender_role TEXT;
ALTER TABLE chat_revision ADD COLUMN sender_id INTEGER;
ALTER TABLE chat_revision ADD COLUMN recipient_role TEXT;
ALTER TABLE chat_revision ADD COLUMN recipient_id INTEGER;
ALTER TABLE chat_revision ADD COLUMN message_created INTEGER;
UPDATE chat_revision SET
    sender_role = (SELECT "senderRole" FROM "Message" m WHERE m.id = chat_revision.message_id),
    sender_id = (SELECT "senderId" FROM "Message" m WHERE m.id = chat_revision.message_id),
    recipient_role = (SELECT "recipientRole" FROM "Message" m WHERE m.id = chat_revision.message_id),
    recipient_id = (SELECT "recipientId" FROM "Message" m WHERE m.id = chat_revision.message_id),
    message_created = (SELECT "createdAt" FROM "Message" m WHERE m.id = chat_revision.message_id)
WHERE sender_role IS NULL;
CREATE INDEX chat_revision_sender_idx ON chat_revision (sender_role, sender_id);
CREATE INDEX chat_revision_recipient_idx ON chat_revision (recipient_role, recipient_id);
CREATE INDEX chat_revision_created_idx ON chat_revision (message_created);

ALTER TABLE chat_report ADD COLUMN webhook_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chat_report ADD COLUMN webhook_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chat_report ADD COLUMN webhook_next INTEGER;
CREATE INDEX chat_report_pending_idx ON chat_report (id) WHERE webhook_pending;
CREATE INDEX chat_report_message_idx ON chat_report (message_id, reporter_role, reporter_id);
