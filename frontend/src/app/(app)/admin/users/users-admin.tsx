"use client";

import { Search } from "lucide-react";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState } from "react";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { EmptyState, ErrorState, LoadMore, LoadingState } from "@/components/states";
import { useToast } from "@/components/toaster";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import type { Role, UserPublic } from "@/lib/api/types";
import { describeError } from "@/lib/error-messages";
import { setUser, usePager, useUsersQuery, type UserFilters } from "@/lib/queries";
import { orMade } from "@/lib/errors";
import { getServices } from "@/lib/services";

const PAGE_SIZE = 25;

type ActiveFilter = "all" | "active" | "inactive";
type RoleFilter = "all" | Role;

interface Filters {
  q: string;
  role: RoleFilter;
  active: ActiveFilter;
}

function toFilters(filters: Filters): UserFilters {
  return {
    q: filters.q.trim() || undefined,
    role: filters.role === "all" ? undefined : filters.role,
    is_active: filters.active === "all" ? undefined : filters.active === "active",
  };
}

const selectClass =
  "h-9 rounded-md border border-input bg-transparent px-2 text-sm outline-none focus-visible:ring-2 focus-visible:ring-ring disabled:opacity-50 dark:bg-background";

/** `GET /users` (search, filters, cursor paging) and `PATCH /users/{id}` (role, deactivate/reactivate). */
export function UsersAdmin() {
  const me = useSessionStore((s) => s.user);
  const toast = useToast();
  const [filters, setFilters] = useState<Filters>({ q: "", role: "all", active: "all" });
  const [query, setQuery] = useState<Filters>(filters); // debounced copy of filters
  const [busy, setBusy] = useState<string | null>(null);
  const ids = { q: useId(), role: useId(), active: useId() };
  const queryClient = useQueryClient();

  // Typing waits for a pause; the selects apply at once.
  useEffect(() => {
    const handle = setTimeout(() => setQuery(filters), filters.q === query.q ? 0 : 300);
    return () => clearTimeout(handle);
  }, [filters, query.q]);

  // Read on mount and whenever the (debounced) filters change; each filter set is cached.
  const users = useUsersQuery(toFilters(query), PAGE_SIZE);
  const pager = usePager(users, "users");
  const { items } = users;
  const status = pager.status;

  async function update(user: UserPublic, change: { role?: Role; is_active?: boolean }, done: string) {
    setBusy(user.id);
    try {
      // Made but unanswered (too_large, applied): the change is done; the row shows our copy with it.
      const saved = await orMade(getServices().users.update(user.id, change), () => ({ ...user, ...change }));
      setUser(queryClient, saved);
      toast({ title: done, description: `${saved.display_name} <${saved.email}>` });
    } catch (e) {
      toast({ title: "The change was not saved", description: describeError(e), variant: "destructive" });
    } finally {
      setBusy(null);
    }
  }

  if (me && me.role !== "admin") {
    return <EmptyState title="Admins only" description="Only administrators can see and manage accounts." />;
  }

  const filtering = query.q !== "" || query.role !== "all" || query.active !== "all";

  return (
    <div className="grid gap-4">
      <form role="search" className="flex flex-wrap items-end gap-3" onSubmit={(e) => e.preventDefault()}>
        <div className="grid min-w-56 flex-1 gap-1.5">
          <Label htmlFor={ids.q}>Search</Label>
          <div className="relative">
            <Search className="pointer-events-none absolute top-2.5 left-2.5 size-4 text-muted-foreground" aria-hidden="true" />
            <Input
              id={ids.q}
              type="search"
              placeholder="Name or email"
              className="pl-8"
              value={filters.q}
              onChange={(e) => setFilters((f) => ({ ...f, q: e.target.value }))}
            />
          </div>
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor={ids.role}>Role</Label>
          <select id={ids.role} className={selectClass} value={filters.role} onChange={(e) => setFilters((f) => ({ ...f, role: e.target.value as RoleFilter }))}>
            <option value="all">Any role</option>
            <option value="admin">Admins</option>
            <option value="member">Members</option>
          </select>
        </div>
        <div className="grid gap-1.5">
          <Label htmlFor={ids.active}>Status</Label>
          <select id={ids.active} className={selectClass} value={filters.active} onChange={(e) => setFilters((f) => ({ ...f, active: e.target.value as ActiveFilter }))}>
            <option value="all">Any status</option>
            <option value="active">Active</option>
            <option value="inactive">Deactivated</option>
          </select>
        </div>
      </form>

      {status === "loading" ? (
        <LoadingState label="Loading users…" />
      ) : status === "error" ? (
        <ErrorState title="Could not load users" error={users.error} onRetry={() => void users.refetch()} />
      ) : items.length === 0 ? (
        <EmptyState
          title={filtering ? "No users match" : "No users yet"}
          description={filtering ? "Try another search or filter." : "Accounts appear here once people register."}
        />
      ) : (
        <div className="overflow-x-auto rounded-lg border border-border">
          <table className="w-full text-sm" aria-label="Users">
            <thead className="bg-muted/50 text-left text-xs text-muted-foreground uppercase">
              <tr>
                <th scope="col" className="px-3 py-2 font-medium">User</th>
                <th scope="col" className="px-3 py-2 font-medium">Role</th>
                <th scope="col" className="px-3 py-2 font-medium">Status</th>
                <th scope="col" className="hidden px-3 py-2 font-medium md:table-cell">Last sign-in</th>
                <th scope="col" className="px-3 py-2 font-medium"><span className="sr-only">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {items.map((user) => {
                const self = user.id === me?.id;
                const disabled = busy === user.id || self;
                return (
                  <tr key={user.id} className="border-t border-border" data-testid="user-row" data-email={user.email}>
                    <td className="px-3 py-2">
                      <div className="font-medium">
                        {user.display_name}
                        {self ? <span className="ml-2 text-xs text-muted-foreground">(you)</span> : null}
                      </div>
                      <div className="text-muted-foreground">{user.email}</div>
                    </td>
                    <td className="px-3 py-2">
                      <select
                        aria-label={`Role of ${user.email}`}
                        className={selectClass}
                        value={user.role}
                        disabled={disabled}
                        title={self ? "You cannot change your own role here" : undefined}
                        onChange={(e) => void update(user, { role: e.target.value as Role }, "Role changed")}
                      >
                        <option value="member">Member</option>
                        <option value="admin">Admin</option>
                      </select>
                    </td>
                    <td className="px-3 py-2">
                      {user.is_active ? <Badge variant="secondary">Active</Badge> : <Badge variant="outline">Deactivated</Badge>}
                    </td>
                    <td className="hidden px-3 py-2 text-muted-foreground md:table-cell">
                      {user.last_login_at ? new Date(user.last_login_at).toLocaleString() : "Never"}
                    </td>
                    <td className="px-3 py-2 text-right">
                      {user.is_active ? (
                        <ConfirmDialog
                          trigger={
                            <Button variant="outline" size="sm" disabled={disabled} aria-label={`Deactivate ${user.email}`}>
                              Deactivate
                            </Button>
                          }
                          title={`Deactivate ${user.display_name}?`}
                          description={`${user.email} is signed out everywhere at once and cannot sign in until reactivated.`}
                          confirmLabel="Deactivate"
                          onConfirm={() => void update(user, { is_active: false }, "User deactivated")}
                        />
                      ) : (
                        <Button
                          variant="outline"
                          size="sm"
                          disabled={disabled}
                          aria-label={`Reactivate ${user.email}`}
                          onClick={() => void update(user, { is_active: true }, "User reactivated")}
                        >
                          Reactivate
                        </Button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      <LoadMore pages={pager} />
    </div>
  );
}
