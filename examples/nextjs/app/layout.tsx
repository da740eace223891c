import type { Metadata } from "next";
import Link from "next/link";
import "./globals.css";
import { getSession, isSupervisor } from "@/lib/session";
import { SignOut } from "./SignOut";

export const metadata: Metadata = { title: "School chat", description: "Teachers and students, one to one." };

export default async function RootLayout({ children }: { children: React.ReactNode }) {
  const user = await getSession();
  return (
    <html lang="en">
      <body>
        <header>
          <strong>School chat</strong>
          <nav>
            <Link href="/chat">Chat</Link>
            <Link href="/messages">Recent messages (Prisma)</Link>
            {user && isSupervisor(user) && <Link href="/supervise">Supervise</Link>}
            {user && isSupervisor(user) && <Link href="/reports">Reports</Link>}
          </nav>
          {user && <SignOut user={{ role: user.role, id: user.id }} />}
        </header>
        <main>{children}</main>
      </body>
    </html>
  );
}
