"use client";

import type { PresenceMember } from "@/lib/realtime/types";
import { cn } from "@/lib/utils";
import { presenceUserId } from "./use-live-resources";

export function initials(name: string): string {
  const words = name
    .replace(/@.*/, "")
    .split(/[\s._-]+/)
    .filter(Boolean);
  const letters = words.length >= 2 ? `${words[0]![0]}${words[words.length - 1]![0]}` : (words[0] ?? "?").slice(0, 2);
  return letters.toUpperCase();
}

/**
 * Who has this board open: one avatar per person (however many tabs), initials from the member list.
 * `stale`: the list may be out of date (its last snapshot failed, or the connection halted), so it
 * is shown faded and says who was seen here, not who is.
 */
export function PresenceAvatars({
  members,
  names,
  me,
  stale = false,
}: {
  members: PresenceMember[];
  names: Record<string, string>;
  me?: string;
  stale?: boolean;
}) {
  const people = [...new Set(members.map((m) => presenceUserId(m.user)))];
  const counted = `${people.length} ${people.length === 1 ? "person" : "people"}`;
  const label = stale ? `${counted} seen here (may be out of date)` : `${counted} here`;
  return (
    <div className="flex items-center gap-2" data-testid="presence" data-count={people.length} data-stale={stale}>
      <ul aria-label={label} className={cn("flex -space-x-2", stale && "opacity-50")}>
        {people.slice(0, 6).map((id) => {
          const name = names[id] ?? "Someone";
          const you = id === me;
          return (
            <li
              key={id}
              title={you ? `${name} (you)` : name}
              className="grid size-8 place-items-center rounded-full border-2 border-background bg-secondary text-xs font-semibold text-secondary-foreground"
            >
              <span aria-hidden="true">{initials(name)}</span>
              <span className="sr-only">
                {name}
                {you ? " (you)" : ""}
              </span>
            </li>
          );
        })}
        {people.length > 6 ? (
          <li className="grid size-8 place-items-center rounded-full border-2 border-background bg-muted text-xs">+{people.length - 6}</li>
        ) : null}
      </ul>
      <span className="text-xs text-muted-foreground">{label}</span>
    </div>
  );
}
