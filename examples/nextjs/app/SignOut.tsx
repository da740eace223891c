"use client";
import { ChatClient, type UserRef } from "chat-sdk";
import { signOut } from "./actions";

/**
 * Sign out on a shared school computer: first remove what chat-sdk kept in this browser for the
 * user (messages not yet sent included), then end the session on the server.
 */
export function SignOut({ user }: { user: UserRef }) {
  return (
    <form
      action={async () => {
        await ChatClient.clearStorage(user).catch(() => {});
        await signOut();
      }}
    >
      <span className="who">
        Signed in as {user.role} {user.id}
      </span>
      <button type="submit" className="link" id="sign-out">
        Sign out
      </button>
    </form>
  );
}
