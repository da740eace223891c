// The design of the original setup guide's socket server, as its users run it:
// Socket.IO 4, pg with a pool of 10, one INSERT per message, then an emit to the
// recipient's room. Clients join the room of their (role, id) and send via "sendMessage"
// with an acknowledgement callback. (The guide's server trusted the client's claimed id;
// this baseline keeps that, which only makes it cheaper than ours.)
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "socket.io";
import pg from "pg";

const port = Number(process.env.SOCKET_PORT ?? 4001);
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const http = createServer();
const io = new Server(http, { cors: { origin: "*" } });

io.on("connection", (socket) => {
  socket.on("join", ({ role, id }) => {
    socket.data.user = { role, id };
    socket.join(`${role}-${id}`);
  });
  socket.on("sendMessage", async (msg, ack) => {
    const sender = socket.data.user;
    const id = randomUUID();
    const now = new Date();
    try {
      await pool.query(
        'INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content, "createdAt", "updatedAt") VALUES ($1, $2, $3, $4, $5, $6, $7, $7)',
        [id, sender.id, sender.role, msg.recipientId, msg.recipientRole, msg.content, now],
      );
      io.to(`${msg.recipientRole}-${msg.recipientId}`).emit("newMessage", {
        id, senderId: sender.id, senderRole: sender.role, recipientId: msg.recipientId,
        recipientRole: msg.recipientRole, content: msg.content, createdAt: now.getTime(),
      });
      ack?.({ id, createdAt: now.getTime() });
    } catch (e) {
      ack?.({ error: String(e) });
    }
  });
});

http.listen(port, "127.0.0.1", () => console.error(`socket.io baseline listening on ${port}`));
process.on("SIGTERM", () => process.exit(0));
