-- The embedded (SQLite) database of `chat-server serve` without DATABASE_URL and of
-- `chat-server demo`: the same logical schema as the app's PostgreSQL, in the form
-- Prisma's SQLite connector gives these models. Here the chat server owns the whole file,
-- so it also holds the directory of users ("Teacher", "Student") that a real deployment
-- keeps in the app's own tables. Applied by chat-server itself through sqlx's migrator
-- (recorded in _sqlx_migrations); never edit an applied file, add a new one.

-- model Teacher { id Int @id @default(autoincrement()) name String }
CREATE TABLE "Teacher" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL
);

-- model Student { id Int @id @default(autoincrement()) name String }
CREATE TABLE "Student" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL
);

-- The guide's Message model. DateTime columns hold integer milliseconds since the Unix
-- epoch (UTC), as Prisma stores DateTime in SQLite; `(createdAt, id)` orders messages
-- exactly as on PostgreSQL.
CREATE TABLE "Message" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "senderId" INTEGER NOT NULL,
    "senderRole" TEXT NOT NULL,
    "recipientId" INTEGER NOT NULL,
    "recipientRole" TEXT NOT NULL,
    "content" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    "updatedAt" DATETIME NOT NULL,
    "isRead" BOOLEAN NOT NULL DEFAULT false
);

-- The same four indexes as migrations/postgres/0001_message.sql, for the same queries.
CREATE INDEX "Message_conversation_idx"
    ON "Message" ("senderRole", "senderId", "recipientRole", "recipientId", "createdAt", "id");
CREATE INDEX "Message_recipient_idx" ON "Message" ("recipientRole", "recipientId", "createdAt", "id");
CREATE INDEX "Message_sender_idx" ON "Message" ("senderRole", "senderId", "createdAt", "id");
CREATE INDEX "Message_inbox_idx"
    ON "Message" ("recipientRole", "recipientId", "senderRole", "senderId", "isRead");

-- Teachers and students in one relation; a user is (role, id): teacher 1 is not student 1.
CREATE VIEW users_view AS
    SELECT "id", "name", 'teacher' AS "role" FROM "Teacher"
    UNION ALL
    SELECT "id", "name", 'student' AS "role" FROM "Student";
