"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { cn } from "@/lib/utils";

export function WorkspaceNav({ workspaceId }: { workspaceId: string }) {
  const pathname = usePathname();
  const q = `?id=${encodeURIComponent(workspaceId)}`;
  const tabs = [
    { href: `/workspace/${q}`, path: "/workspace/", label: "Board" },
    { href: `/workspace/members/${q}`, path: "/workspace/members/", label: "Members" },
    { href: `/workspace/activity/${q}`, path: "/workspace/activity/", label: "Activity" },
  ];
  return (
    <nav aria-label="Workspace" className="mb-6 flex gap-1 overflow-x-auto border-b border-border">
      {tabs.map((tab) => {
        const active = pathname === tab.path;
        return (
          <Link
            key={tab.path}
            href={tab.href}
            aria-current={active ? "page" : undefined}
            className={cn(
              "-mb-px shrink-0 rounded-t-md border-b-2 border-transparent px-3 py-2 text-sm text-muted-foreground outline-none hover:text-foreground focus-visible:ring-2 focus-visible:ring-ring",
              active && "border-foreground text-foreground",
            )}
          >
            {tab.label}
          </Link>
        );
      })}
    </nav>
  );
}
