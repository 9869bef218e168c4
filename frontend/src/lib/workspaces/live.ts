import type { HubEvent } from "../api/types";
import type { ActivityPublic, InvitationPublic, MemberPublic, MyWorkspace } from "../api/workspaces";

/**
 * Pure state updates for the workspace pages: REST pages and realtime events
 * (`docs/domain.md`, *Events*) merged into one list without duplicates.
 */

/** Newest first by id, each id once; a later copy of an id replaces the earlier one. */
export function mergeActivity(current: readonly ActivityPublic[], incoming: readonly ActivityPublic[]): ActivityPublic[] {
  const byId = new Map<number, ActivityPublic>();
  for (const entry of current) byId.set(entry.id, entry);
  for (const entry of incoming) byId.set(entry.id, entry);
  return [...byId.values()].sort((a, b) => b.id - a.id);
}

/** Event types that write an activity row (so the feed should look again). */
export function isActivityEvent(type: string): boolean {
  return /^(resource|member|workspace|invitation)\./.test(type);
}

function byEmail(a: MemberPublic, b: MemberPublic): number {
  return a.email < b.email ? -1 : a.email > b.email ? 1 : a.user_id < b.user_id ? -1 : a.user_id > b.user_id ? 1 : 0;
}

/** Insert or replace by `user_id`, kept in the hub's order (by email). */
export function upsertMember(members: readonly MemberPublic[], member: MemberPublic): MemberPublic[] {
  return [...members.filter((m) => m.user_id !== member.user_id), member].sort(byEmail);
}

export function removeMember(members: readonly MemberPublic[], userId: string): MemberPublic[] {
  return members.filter((m) => m.user_id !== userId);
}

/**
 * Apply a `member.*` event of workspace `workspaceId` to a members list. Other
 * events (and other workspaces' members) leave it as it is (same array).
 */
export function applyMemberEvent(members: MemberPublic[], event: HubEvent<unknown>, workspaceId: string): MemberPublic[] {
  if (!event.type.startsWith("member.")) return members;
  const member = event.data as Partial<MemberPublic> | null;
  if (!member || typeof member.user_id !== "string" || member.workspace_id !== workspaceId) return members;
  switch (event.type) {
    case "member.added":
    case "member.updated":
      return upsertMember(members, member as MemberPublic);
    case "member.removed":
      return removeMember(members, member.user_id);
    default:
      return members;
  }
}

/** Insert an invitation, or replace the one pending for its email (a new one replaces it), kept by email. */
export function upsertInvitation(list: readonly InvitationPublic[], invitation: InvitationPublic): InvitationPublic[] {
  const rest = list.filter((i) => i.id !== invitation.id && i.email !== invitation.email);
  return [...rest, invitation].sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0));
}

/**
 * Apply an event of workspace `workspaceId` to its list of pending invitations:
 * `invitation.created` adds (or replaces by email), `invitation.declined`/`revoked`
 * removes, and `member.added` removes the new member's email (an accepted invitation
 * shows as `member.added`). Anything else leaves the list as it is (same array).
 */
export function applyInvitationEvent(list: InvitationPublic[], event: HubEvent<unknown>, workspaceId: string): InvitationPublic[] {
  const data = event.data as { workspace_id?: unknown; email?: unknown; id?: unknown } | null;
  if (!data || data.workspace_id !== workspaceId) return list;
  switch (event.type) {
    case "invitation.created":
      return typeof data.id === "string" ? upsertInvitation(list, data as InvitationPublic) : list;
    case "invitation.declined":
    case "invitation.revoked":
      return list.some((i) => i.id === data.id) ? list.filter((i) => i.id !== data.id) : list;
    case "member.added":
      return list.some((i) => i.email === data.email) ? list.filter((i) => i.email !== data.email) : list;
    default:
      return list;
  }
}

/** Insert or replace by id in a newest-first workspace list (a new one goes on top). */
export function upsertWorkspace(list: readonly MyWorkspace[], workspace: MyWorkspace): MyWorkspace[] {
  const at = list.findIndex((w) => w.id === workspace.id);
  if (at === -1) return [workspace, ...list];
  const next = [...list];
  next[at] = workspace;
  return next;
}

/** Append a next page, skipping ids already shown (a row may have moved between pages). */
export function appendPage<T>(current: readonly T[], page: readonly T[], key: (item: T) => string | number): T[] {
  const seen = new Set(current.map(key));
  return [...current, ...page.filter((item) => !seen.has(key(item)))];
}

const ACTIONS: Record<string, string> = {
  "workspace.created": "created the workspace",
  "workspace.updated": "renamed the workspace",
  "workspace.deleted": "deleted the workspace",
  "member.added": "added a member",
  "member.updated": "changed a member's role",
  "member.removed": "removed a member",
  "invitation.created": "sent an invitation",
  "invitation.declined": "declined an invitation",
  "invitation.revoked": "revoked an invitation",
  "resource.created": "created",
  "resource.updated": "updated",
  "resource.deleted": "deleted",
  "resource.restored": "restored",
};

function text(value: unknown): string | null {
  return typeof value === "string" && value.trim() ? value : null;
}

/** One line for an activity row, e.g. `created task "Fix the login"` or `added a member: ada@example.com (admin)`. */
export function describeActivity(entry: Pick<ActivityPublic, "action" | "summary" | "subject_type">): string {
  const verb = ACTIONS[entry.action] ?? entry.action;
  const s = entry.summary ?? {};
  if (entry.action.startsWith("resource.")) {
    const kind = text(s.kind) ?? entry.subject_type;
    const title = text(s.title);
    const status = entry.action === "resource.updated" && text(s.status) ? ` (${text(s.status)})` : "";
    return `${verb} ${kind}${title ? ` “${title}”` : ""}${status}`;
  }
  if (entry.action.startsWith("member.") || entry.action.startsWith("invitation.")) {
    const who = text(s.email);
    const role = text(s.role);
    return `${verb}${who ? `: ${who}` : ""}${role ? ` (${role})` : ""}`;
  }
  if (entry.action === "workspace.updated" && text(s.name)) return `${verb} to “${text(s.name)}”`;
  return verb;
}
