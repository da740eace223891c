import "server-only";
import { SignJWT, jwtVerify } from "jose";
import { cookies, headers } from "next/headers";
import type { UserRef } from "chat-sdk";

// The example's sign-in: pick a teacher or a student. A real app has its own auth; what
// matters is that the identity lives on the server (an httpOnly cookie here), so the
// browser can never choose whom it chats as.

const COOKIE = "school_session";

function secret(name: "SESSION_SECRET" | "CHAT_TOKEN_SECRET"): Uint8Array {
  const value = process.env[name];
  if (!value || value.length < 32) throw new Error(`${name} must be set to 32 or more random bytes (see .env.example)`);
  return new TextEncoder().encode(value);
}

function isRole(value: unknown): value is UserRef["role"] {
  return value === "teacher" || value === "student";
}

export async function startSession(user: UserRef): Promise<void> {
  const jwt = await new SignJWT({ role: user.role, id: user.id })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime("8h")
    .sign(secret("SESSION_SECRET"));
  const secure = (await headers()).get("x-forwarded-proto") === "https";
  (await cookies()).set(COOKIE, jwt, { httpOnly: true, sameSite: "lax", path: "/", secure, maxAge: 8 * 3600 });
}

export async function endSession(): Promise<void> {
  (await cookies()).delete(COOKIE);
}

/** The signed-in user, or null. */
export async function getSession(): Promise<UserRef | null> {
  const jwt = (await cookies()).get(COOKIE)?.value;
  if (!jwt) return null;
  try {
    const { payload } = await jwtVerify(jwt, secret("SESSION_SECRET"), { algorithms: ["HS256"] });
    if (!isRole(payload.role) || typeof payload.id !== "number") return null;
    return { role: payload.role, id: payload.id };
  } catch {
    return null;
  }
}

/**
 * Whether `user` is one of the school's supervisors (safeguarding staff): teachers listed by id in
 * CHAT_SUPERVISORS. A real app keeps this where it keeps its roles.
 */
export function isSupervisor(user: UserRef): boolean {
  if (user.role !== "teacher") return false;
  return (process.env.CHAT_SUPERVISORS ?? "").split(",").map((s) => s.trim()).includes(String(user.id));
}

/**
 * A short-lived chat token for `user`, which chat-server verifies with the shared secret.
 * Audience and issuer name the chat server and this app: chat-server refuses tokens meant
 * for anything else once CHAT_TOKEN_AUDIENCE / CHAT_TOKEN_ISSUER are set (they are read
 * from the same .env by both).
 */
export async function mintChatToken(user: UserRef): Promise<string> {
  // Safeguarding staff read students' conversations (read-only, audited by chat-server).
  const claims = isSupervisor(user) ? { role: user.role, id: user.id, supervisor: true } : { role: user.role, id: user.id };
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime("5m"); // the SDK asks for a fresh one before it expires
  if (process.env.CHAT_TOKEN_AUDIENCE) jwt = jwt.setAudience(process.env.CHAT_TOKEN_AUDIENCE);
  if (process.env.CHAT_TOKEN_ISSUER) jwt = jwt.setIssuer(process.env.CHAT_TOKEN_ISSUER);
  return jwt.sign(secret("CHAT_TOKEN_SECRET"));
}
