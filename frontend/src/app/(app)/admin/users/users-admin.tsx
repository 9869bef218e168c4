"use client";

import { Search } from "lucide-react";
import { useCallback, useEffect, useId, useRef, useState } from "react";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { EmptyState, ErrorState, LoadingState } from "@/components/states";
import { useToast } from "@/components/toaster";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Label } from "@/components/ui/label";
import type { ListUsersQuery, Role, UserPublic } from "@/lib/api/types";
import { describeError } from "@/lib/error-messages";
import { getServices } from "@/lib/services";

const PAGE_SIZE = 25;

type ActiveFilter = "all" | "active" | "inactive";
type RoleFilter = "all" | Role;

interface Filters {
  q: string;
  role: RoleFilter;
  active: ActiveFilter;
}

function toQuery(filters: Filters, cursor: string | null): ListUsersQuery {
  return {
    q: filters.q.trim() || undefined,
    role: filters.role === "all" ? undefined : filters.role,
    is_active: filters.active === "all" ? undefined : filters.active === "active",
    limit: PAGE_SIZE,
    cursor: cursor ?? undefined,
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
  const [items, setItems] = useState<UserPublic[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [status, setStatus] = useState<"loading" | "ready" | "error" | "more">("loading");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const request = useRef<AbortController | null>(null);
  const ids = { q: useId(), role: useId(), active: useId() };

  // Typing waits for a pause; the selects apply at once.
  useEffect(() => {
    const handle = setTimeout(() => setQuery(filters), filters.q === query.q ? 0 : 300);
    return () => clearTimeout(handle);
  }, [filters, query.q]);

  const load = useCallback(
    async (append: string | null) => {
      request.current?.abort();
      const controller = new AbortController();
      request.current = controller;
      setStatus(append ? "more" : "loading");
      try {
        const page = await getServices().users.list(toQuery(query, append), controller.signal);
        if (controller.signal.aborted) return;
        setItems((prev) => (append ? [...prev, ...page.items.filter((u) => !prev.some((p) => p.id === u.id))] : page.items));
        setCursor(page.next_cursor ?? null);
        setStatus("ready");
        setError(null);
      } catch (e) {
        if (controller.signal.aborted) return;
        setError(e);
        setStatus(append ? "ready" : "error");
        if (append) toast({ title: "Could not load more users", description: describeError(e), variant: "destructive" });
      }
    },
    [query, toast],
  );

  useEffect(() => {
    // Fetch on mount and whenever the (debounced) filters change.
    // eslint-disable-next-line react-hooks/set-state-in-effect
    void load(null);
    return () => request.current?.abort();
  }, [load, reload]);

  async function update(user: UserPublic, change: { role?: Role; is_active?: boolean }, done: string) {
    setBusy(user.id);
    try {
      const saved = await getServices().users.update(user.id, change);
      setItems((prev) => prev.map((u) => (u.id === saved.id ? saved : u)));
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
        <ErrorState title="Could not load users" error={error} onRetry={() => setReload((n) => n + 1)} />
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

      {status !== "loading" && status !== "error" && cursor ? (
        <div className="flex justify-center">
          <Button variant="outline" onClick={() => void load(cursor)} disabled={status === "more"}>
            {status === "more" ? "Loading…" : "Load more"}
          </Button>
        </div>
      ) : null}
    </div>
  );
}
