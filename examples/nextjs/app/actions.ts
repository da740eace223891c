"use server";
import { redirect } from "next/navigation";
import { db } from "@/lib/prisma";
import { endSession, startSession } from "@/lib/session";

/** Signs in as the chosen teacher or student (the example's stand-in for real auth). */
export async function signIn(formData: FormData): Promise<void> {
  const [role, id] = String(formData.get("user") ?? "").split("-");
  const userId = Number(id);
  if ((role !== "teacher" && role !== "student") || !Number.isInteger(userId)) redirect("/?error=pick");
  // By (id, role): teacher 1 and student 1 are different people.
  const user = await db().user.findUnique({ where: { id_role: { id: userId, role } } });
  if (!user) redirect("/?error=unknown");
  await startSession({ role, id: userId });
  redirect("/chat");
}

export async function signOut(): Promise<void> {
  await endSession();
  redirect("/");
}
