import { redirect } from "next/navigation";
import { db } from "@/lib/prisma";
import { getSession } from "@/lib/session";
import { signIn } from "./actions";

export const dynamic = "force-dynamic";

// Sign-in: pick a teacher or a student. Everyone is listed from users_view through Prisma.
export default async function Home({ searchParams }: { searchParams: Promise<{ error?: string }> }) {
  if (await getSession()) redirect("/chat");
  const { error } = await searchParams;
  const users = await db().user.findMany({ orderBy: [{ role: "desc" }, { id: "asc" }] });
  return (
    <div className="signin">
      <h1>Who are you?</h1>
      <p>Sign in as a teacher or a student. Teacher 1 and student 1 are different people.</p>
      {error && (
        <p className="error" role="alert">
          Pick one of the users below.
        </p>
      )}
      <form action={signIn}>
        <ul>
          {users.map((u) => (
            <li key={`${u.role}-${u.id}`}>
              <button type="submit" name="user" value={`${u.role}-${u.id}`} data-user={`${u.role}-${u.id}`}>
                {u.name}{" "}
                <small>
                  ({u.role} {u.id})
                </small>
              </button>
            </li>
          ))}
        </ul>
      </form>
    </div>
  );
}
