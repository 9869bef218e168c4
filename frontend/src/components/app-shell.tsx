"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import type { ReactNode } from "react";
import { cn } from "@/lib/utils";
import { ConnectionIndicator } from "./connection-indicator";
import { OfflineBanner } from "./offline-banner";
import { useSessionStore } from "./providers/session-store-provider";
import { ThemeToggle } from "./theme-toggle";
import { UserMenu } from "./user-menu";

export function AppShell({ children }: { children: ReactNode }) {
  const pathname = usePathname();
  const isAdmin = useSessionStore((s) => s.user?.role === "admin");
  const links = [
    { href: "/workspaces/", label: "Workspaces", active: pathname.startsWith("/workspace") },
    ...(isAdmin ? [{ href: "/admin/users/", label: "Users", active: pathname.startsWith("/admin") }] : []),
  ];
  return (
    <div className="flex min-h-dvh flex-col">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:p-2">
        Skip to content
      </a>
      <header className="sticky top-0 z-40 border-b border-border bg-background/90 backdrop-blur">
        <div className="mx-auto flex h-14 max-w-6xl items-center gap-3 px-4 sm:gap-6">
          <Link href="/workspaces/" className="font-semibold tracking-tight">
            Hubbub
          </Link>
          <nav aria-label="Main" className="flex items-center gap-4 text-sm">
            {links.map((link) => (
              <Link
                key={link.href}
                href={link.href}
                aria-current={link.active ? "page" : undefined}
                className={cn("text-muted-foreground hover:text-foreground", link.active && "text-foreground font-medium")}
              >
                {link.label}
              </Link>
            ))}
          </nav>
          <div className="ml-auto flex min-w-0 items-center gap-1 sm:gap-2">
            <ConnectionIndicator />
            <ThemeToggle />
            <UserMenu />
          </div>
        </div>
        <OfflineBanner />
      </header>
      <main id="main" className="mx-auto w-full max-w-6xl flex-1 px-4 py-8">
        {children}
      </main>
    </div>
  );
}
