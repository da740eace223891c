import { getSession, mintChatToken } from "@/lib/session";

// The chat token for the signed-in user: chat-sdk's `getToken` calls this. The identity
// comes from the session cookie, never from the request.
export async function GET() {
  const user = await getSession();
  if (!user) return Response.json({ error: "not signed in" }, { status: 401 });
  return Response.json({ token: await mintChatToken(user) }, { headers: { "Cache-Control": "no-store" } });
}
