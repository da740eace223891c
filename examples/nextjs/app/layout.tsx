import type { Metadata, Viewport } from "next";
import "./globals.css";
import { getSession, isSupervisor } from "@/lib/session";
import { NavLinks } from "./NavLinks";
import { SignOut } from "./SignOut";

export const metadata: Metadata = { title: "School chat", description: "Teachers and students, one to one." };
export const viewport: Viewport = { width: "device-width", initialScale: 1, colorScheme: "light dark" };

export default async function RootLayout({ children }: { children: React.ReactNode }) {
  const user = await getSession();
  const links = [
    { href: "/chat", label: "Chat" },
    { href: "/messages", label: "Recent messages (Prisma)" },
    ...(user && isSupervisor(user)
      ? [
          { href: "/supervise", label: "Supervise" },
          { href: "/reports", label: "Reports" },
        ]
      : []),
  ];
  return (
    <html lang="en">
      <body>
        <a className="skip" href="#main">
          Skip to content
        </a>
        <header className="site">
          <span className="brand">School chat</span>
          <NavLinks links={links} />
          {user && <SignOut user={{ role: user.role, id: user.id }} />}
        </header>
        <main id="main" tabIndex={-1}>
          {children}
        </main>
      </body>
    </html>
  );
}
