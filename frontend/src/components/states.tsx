import { AlertTriangle, Inbox, Loader2 } from "lucide-react";
import type { ReactNode } from "react";
import { describeError } from "@/lib/error-messages";
import { cn } from "@/lib/utils";
import type { CursorPages } from "@/lib/workspaces/use-cursor-pages";
import { Button } from "./ui/button";

export function LoadingState({ label = "Loading…", className }: { label?: string; className?: string }) {
  return (
    <div role="status" aria-live="polite" className={cn("flex items-center justify-center gap-2 py-16 text-sm text-muted-foreground", className)}>
      <Loader2 className="size-4 animate-spin" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function EmptyState({
  title,
  description,
  action,
  icon,
  className,
}: {
  title: string;
  description?: ReactNode;
  action?: ReactNode;
  icon?: ReactNode;
  className?: string;
}) {
  return (
    <div className={cn("flex flex-col items-center justify-center gap-3 rounded-xl border border-dashed border-border px-6 py-16 text-center", className)}>
      <div className="text-muted-foreground [&_svg]:size-8" aria-hidden="true">
        {icon ?? <Inbox />}
      </div>
      <h2 className="text-base font-semibold">{title}</h2>
      {description ? <p className="max-w-sm text-sm text-muted-foreground">{description}</p> : null}
      {action}
    </div>
  );
}

export function ErrorState({
  error,
  title = "Something went wrong",
  onRetry,
  className,
}: {
  error?: unknown;
  title?: string;
  onRetry?: () => void;
  className?: string;
}) {
  return (
    <div role="alert" className={cn("flex flex-col items-center justify-center gap-3 rounded-xl border border-destructive/40 px-6 py-16 text-center", className)}>
      <AlertTriangle className="size-8 text-destructive" aria-hidden="true" />
      <h2 className="text-base font-semibold">{title}</h2>
      {error !== undefined ? <p className="max-w-sm text-sm text-muted-foreground">{describeError(error)}</p> : null}
      {onRetry ? (
        <Button variant="outline" onClick={onRetry}>
          Try again
        </Button>
      ) : null}
    </div>
  );
}

/** "Load more" under a cursor-paged list; nothing when there is no further page. */
export function LoadMore({ pages }: { pages: Pick<CursorPages<unknown>, "cursor" | "status" | "loadMore"> }) {
  if (!pages.cursor || pages.status === "error") return null;
  return (
    <div className="flex justify-center">
      <Button variant="outline" onClick={pages.loadMore} disabled={pages.status === "more"}>
        {pages.status === "more" ? "Loading…" : "Load more"}
      </Button>
    </div>
  );
}
