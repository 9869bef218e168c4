"use client";

import { AlertTriangle } from "lucide-react";
import { useCallback, useEffect, useRef } from "react";
import type { useToast } from "@/components/toaster";
import { Button } from "@/components/ui/button";
import { hasRole } from "@/lib/api/workspaces";
import { describeError } from "@/lib/error-messages";
import { useWorkspaceQuery } from "@/lib/queries";

/**
 * The caller's workspace and whether their role lets them change its cards
 * (members and up; docs/domain.md, Permissions). Until the role is known
 * nothing offers a change; when the read fails, `roleError` says so (shown by
 * {@link RoleUnknown}) instead of leaving a member silently read-only, and
 * `retry` reads it again (the query does not refetch by itself).
 */
export function useWorkspaceRole(workspaceId: string, options: { enabled: boolean }) {
  const query = useWorkspaceQuery(workspaceId, { enabled: options.enabled });
  const { data, error, isError, refetch } = query;
  const retry = useCallback(() => void refetch(), [refetch]);
  return { workspace: data, canChange: hasRole(data?.role, "member"), roleError: !data && isError ? error : null, retry };
}

/** Inline: the role could not be read, so nothing here offers a change; Retry reads it again. */
export function RoleUnknown({ error, onRetry }: { error: unknown; onRetry: () => void }) {
  return (
    <div role="alert" className="mb-4 flex flex-wrap items-center gap-3 rounded-md border border-destructive/40 px-3 py-2 text-sm">
      <AlertTriangle className="size-4 shrink-0 text-destructive" aria-hidden="true" />
      <div className="grid min-w-0 flex-1 gap-0.5">
        <p className="font-medium">Could not read your role in this workspace</p>
        <p className="text-muted-foreground">{describeError(error)} Until it is read, nothing here can be changed.</p>
      </div>
      <Button size="sm" variant="outline" onClick={onRetry}>
        Retry
      </Button>
    </div>
  );
}

/**
 * Call `onRevoked` when `canChange` turns false (demoted while the page is
 * open): the page drops what it was about to change (an open dialog's state,
 * so a later promotion does not bring it back) and says so.
 */
export function useOnChangeRevoked(canChange: boolean, onRevoked: () => void) {
  const allowed = useRef(canChange);
  const latest = useRef(onRevoked);
  useEffect(() => {
    latest.current = onRevoked;
  });
  useEffect(() => {
    if (allowed.current && !canChange) latest.current();
    allowed.current = canChange;
  }, [canChange]);
}

/** The toast for a change dropped because the user's role no longer allows it; `what` says what was dropped. */
export function toastRoleChanged(toast: ReturnType<typeof useToast>, what: string) {
  toast({ pageOnly: true, title: "Your role in this workspace changed", description: `You can no longer change its cards: ${what}.`, variant: "destructive" });
}
