"use client";

import { LogOut, MonitorX, User } from "lucide-react";
import Link from "next/link";
import { useState } from "react";
import { getServices } from "@/lib/services";
import { useSessionStore } from "./providers/session-store-provider";
import { useToast } from "./toaster";
import { describeError } from "@/lib/error-messages";
import { Button } from "./ui/button";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuLabel,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "./ui/dropdown-menu";

/**
 * Account menu. Signing out clears the session; SessionGate then sends the
 * page to /login/ (one place decides where a signed-out page goes).
 */
export function UserMenu() {
  const user = useSessionStore((s) => s.user);
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  const name = user?.display_name || user?.email || "Account";

  async function signOut(everywhere: boolean) {
    setBusy(true);
    const { auth } = getServices();
    try {
      await (everywhere ? auth.logoutEverywhere() : auth.logout());
    } catch (error) {
      // Signed out here anyway; the hub may still hold the session until it expires.
      toast({ title: "Sign-out was not confirmed by the server", description: describeError(error), variant: "destructive" });
    } finally {
      setBusy(false);
    }
  }

  return (
    <DropdownMenu>
      <DropdownMenuTrigger asChild>
        <Button variant="ghost" size="sm" aria-label={`Account menu for ${name}`} disabled={busy}>
          <User aria-hidden="true" />
          {/* On a phone the icon alone: the name would push the menu off the screen. */}
          <span className="hidden max-w-32 truncate sm:inline">{name}</span>
        </Button>
      </DropdownMenuTrigger>
      <DropdownMenuContent align="end">
        <DropdownMenuLabel className="truncate">{user?.email ?? name}</DropdownMenuLabel>
        <DropdownMenuSeparator />
        <DropdownMenuItem asChild>
          <Link href="/profile/">
            <User aria-hidden="true" /> Profile
          </Link>
        </DropdownMenuItem>
        <DropdownMenuItem onSelect={() => void signOut(false)}>
          <LogOut aria-hidden="true" /> Sign out
        </DropdownMenuItem>
        <DropdownMenuItem onSelect={() => void signOut(true)}>
          <MonitorX aria-hidden="true" /> Sign out everywhere
        </DropdownMenuItem>
      </DropdownMenuContent>
    </DropdownMenu>
  );
}
