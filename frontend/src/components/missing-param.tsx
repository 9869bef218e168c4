import Link from "next/link";
import { Button } from "./ui/button";
import { EmptyState } from "./states";

export function MissingParam({ what }: { what: string }) {
  return (
    <EmptyState
      title={`No ${what} selected`}
      description={`This page needs a ${what} id in its address.`}
      action={
        <Button asChild variant="outline">
          <Link href="/workspaces/">Back to workspaces</Link>
        </Button>
      }
    />
  );
}
