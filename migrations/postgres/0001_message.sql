-- The guide's Message table, exactly as Prisma 7 creates it for the model
--   id String @id @default(uuid()), senderId Int, senderRole String, recipientId Int,
--   recipientRole String, content String, createdAt DateTime @default(now()),
--   updatedAt DateTime @updatedAt, isRead Boolean @default(false)
-- `id` and `updatedAt` have no database default: Prisma's client fills them in, and so
-- does chat-server. Idempotent: applying it twice changes nothing.
CREATE TABLE IF NOT EXISTS "Message" (
    "id" TEXT NOT NULL,
    "senderId" INTEGER NOT NULL,
    "senderRole" TEXT NOT NULL,
    "recipientId" INTEGER NOT NULL,
    "recipientRole" TEXT NOT NULL,
    "content" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "isRead" BOOLEAN NOT NULL DEFAULT false,
    CONSTRAINT "Message_pkey" PRIMARY KEY ("id")
);

-- The indexes chat-server's queries use. In schema.prisma they read:
--   @@index([senderRole, senderId, recipientRole, recipientId, createdAt, id])
--   @@index([recipientRole, recipientId, createdAt, id])
--   @@index([senderRole, senderId, createdAt, id])
--   @@index([recipientRole, recipientId, senderRole, senderId, isRead])
--   @@index([createdAt])
-- A conversation's history, newest first, one direction at a time.
CREATE INDEX IF NOT EXISTS "Message_conversation_idx"
    ON "Message" ("senderRole", "senderId", "recipientRole", "recipientId", "createdAt", "id");
-- Everything a user received, in order (catch-up, conversation list, unread counts).
CREATE INDEX IF NOT EXISTS "Message_recipient_idx"
    ON "Message" ("recipientRole", "recipientId", "createdAt", "id");
-- Everything a user sent, in order (catch-up of the user's other devices).
CREATE INDEX IF NOT EXISTS "Message_sender_idx"
    ON "Message" ("senderRole", "senderId", "createdAt", "id");
-- Who wrote to a user, and how many of their messages are unread (conversation list).
CREATE INDEX IF NOT EXISTS "Message_inbox_idx"
    ON "Message" ("recipientRole", "recipientId", "senderRole", "senderId", "isRead");
-- The oldest messages first: retention (`chat-server purge`, `serve --retention`) deletes
-- them in small batches without reading the whole table.
CREATE INDEX IF NOT EXISTS "Message_createdAt_idx" ON "Message" ("createdAt");
