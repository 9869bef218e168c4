import type { HubEvent } from "../api/types";
import type { Resource, ResourcePatch, SortField, SortOrder } from "../api/resources";
import { compareByPosition, positionAtEnd } from "./order";

/**
 * The board's state, as a pure reducer: what the server said (by id, at the
 * highest version seen), the local edits not yet confirmed (overlays), and
 * the edits the server refused because someone else changed the resource
 * first (conflicts).
 *
 * Sources and how they merge:
 * - REST pages (`loaded`) and REST replies (`upsert`): snapshots.
 * - `resource.*` events from `workspace:<id>` (`event`): each carries the
 *   whole resource at its new version.
 * Whatever the order they arrive in, a resource never goes back to an older
 * version: `versions` remembers the highest version seen per id, across
 * reloads and deletes (so a page fetched before a delete cannot bring the
 * resource back). A hard delete is final.
 *
 * An edit the hub made without sending its copy back (`too_large` with
 * `details.applied`: the card itself is over what NATS carries, so no event
 * and no read brings the server's copy either) is kept with the version it
 * made (`applied`). Each such edit is laid, in version order, over a copy of
 * the card older than its version, and over no other: a copy at or past it
 * already has it, and later changes (someone else's, or our own answered
 * edits) stay.
 */

/** `resource.deleted` adds `hard` to the resource (docs/domain.md, Events). */
export type ResourceEventData = Resource & { hard?: boolean };
export type ResourceEvent = HubEvent<ResourceEventData>;

/** A local change shown before the server confirms it: an edit, or a soft delete (`deleted_at`). */
export type Overlay = ResourcePatch & { deleted_at?: string | null };

export interface PendingEdit {
  /** Identifies the latest request, so a late answer to an earlier edit keeps the overlay. */
  opId: string;
  /** Every unconfirmed local change to this resource, merged (a later one wins per field). */
  patch: Overlay;
  /** The version the edit was made against (sent as If-Match). */
  baseVersion: number;
}

export interface Conflict {
  /** What the user wanted. */
  patch: ResourcePatch;
  /** The version they edited. */
  baseVersion: number;
}

/** Our edits of a card the hub made without sending its copy back: `patch` made `version`. */
export interface AppliedEdit {
  patch: Overlay;
  version: number;
}

export interface BoardState {
  items: Record<string, Resource>;
  /** The highest version of each card seen from the server (a copy with an applied edit laid over it is ours, not the server's). */
  versions: Record<string, number>;
  pending: Record<string, PendingEdit>;
  conflicts: Record<string, Conflict>;
  /** Our edits the hub made without sending its copy back, by card, in version order: each laid over the card's copies older than the version it made. */
  applied: Record<string, readonly AppliedEdit[]>;
  /** Resources created here and not confirmed yet, by their idempotency key (their id is the server's to give). */
  drafts: Record<string, Resource>;
  /** Every kind, tag and status seen since the board opened (the filter menus keep them while a filter hides their resources). */
  seen: { kinds: readonly string[]; tags: readonly string[]; statuses: readonly string[] };
}

export type BoardAction =
  /** A REST listing. `replace`: it is the whole board for the current query (drop what it lacks). */
  | { type: "loaded"; items: Resource[]; replace: boolean }
  /** One resource from a REST reply (create, get, update, restore). */
  | { type: "upsert"; resource: Resource }
  | { type: "event"; event: { type: string; data: ResourceEventData } }
  /** Gone for good (a hard delete we made: the hub answers 204 with no body). */
  | { type: "removed"; id: string }
  | { type: "optimistic"; id: string; opId: string; patch: Overlay; baseVersion: number }
  /** A create sent (or queued): shown as a card until the server's resource replaces it. */
  | { type: "draftAdded"; draft: Resource }
  /** The create was answered (`resource`) or refused (none). */
  | { type: "draftSettled"; draftId: string; resource?: Resource }
  | { type: "confirmed"; id: string; opId: string; resource: Resource }
  | { type: "rolledBack"; id: string; opId: string }
  /** The hub made the edit (`patch`, at `version`) but could not send its copy back. */
  | { type: "applied"; id: string; opId: string; patch: Overlay; version: number }
  /** The edit was refused as stale; `current` is the server's newer version. */
  | { type: "conflicted"; id: string; opId: string; current: Resource }
  | { type: "conflictResolved"; id: string };

export const HARD_DELETED = Number.MAX_SAFE_INTEGER;

export const initialBoardState: BoardState = {
  items: {},
  versions: {},
  pending: {},
  conflicts: {},
  applied: {},
  drafts: {},
  seen: { kinds: [], tags: [], statuses: [] },
};

function union(list: readonly string[], more: readonly string[]): readonly string[] {
  const missing = more.filter((x) => !list.includes(x));
  return missing.length ? [...list, ...missing] : list;
}

function noteFacets(seen: BoardState["seen"], r: Resource): BoardState["seen"] {
  const kinds = union(seen.kinds, [r.kind]);
  const tags = union(seen.tags, r.tags);
  const statuses = union(seen.statuses, [r.status]);
  return kinds === seen.kinds && tags === seen.tags && statuses === seen.statuses ? seen : { kinds, tags, statuses };
}

function without<T>(record: Record<string, T>, id: string): Record<string, T> {
  if (!(id in record)) return record;
  const next = { ...record };
  delete next[id];
  return next;
}

/** `resource` with those of our applied edits laid over it, in order, that made a version after its own. */
function withApplied(applied: BoardState["applied"], resource: Resource): Resource {
  let out = resource;
  for (const edit of applied[resource.id] ?? []) {
    if (edit.version > out.version) out = { ...out, ...definedFields(edit.patch), version: edit.version };
  }
  return out;
}

/** Take `resource` if it is newer than anything seen for its id. */
function accept(state: BoardState, resource: Resource): BoardState {
  const seen = state.versions[resource.id] ?? -1;
  if (resource.version <= seen && state.items[resource.id]) return state;
  if (resource.version < seen) return state;
  return {
    ...state,
    items: { ...state.items, [resource.id]: withApplied(state.applied, resource) },
    versions: { ...state.versions, [resource.id]: resource.version },
    seen: resource.deleted_at ? state.seen : noteFacets(state.seen, resource),
  };
}

function remove(state: BoardState, id: string): BoardState {
  return {
    ...state,
    items: without(state.items, id),
    versions: { ...state.versions, [id]: HARD_DELETED },
    pending: without(state.pending, id),
    conflicts: without(state.conflicts, id),
    applied: without(state.applied, id),
  };
}

/** The fields an edit can retry (a delete is not retried from a conflict). */
function editFields(overlay: Overlay): ResourcePatch {
  const patch: Overlay = { ...overlay };
  delete patch.deleted_at;
  return patch;
}

function stripHard(data: ResourceEventData): Resource {
  const resource: ResourceEventData = { ...data };
  delete resource.hard;
  return resource;
}

/** Every card of `status` on the board (local edits and drafts included). */
function columnMates(state: BoardState, status: string): Resource[] {
  const mates: Resource[] = [];
  for (const id of Object.keys(state.items)) {
    const resource = viewOf(state, id)!;
    if (!resource.deleted_at && resource.status === status) mates.push(resource);
  }
  for (const draft of Object.values(state.drafts)) if (draft.status === status) mates.push(draft);
  return mates;
}

/**
 * The key after the last card of `status` on the board as shown (`state` with
 * the listing laid in; local edits and drafts included): where a card added to
 * the column while offline is drawn, and the `position` its create sends.
 */
export function positionAtColumnEnd(state: BoardState, status: string): string {
  return positionAtEnd(columnMates(state, status));
}

export function boardReducer(state: BoardState, action: BoardAction): BoardState {
  switch (action.type) {
    case "loaded": {
      // One pass over the page (the board lays the whole cached listing over its state on every change).
      let items: Record<string, Resource>;
      if (action.replace) {
        const keep = new Set(action.items.map((r) => r.id));
        // Keep what we are editing or resolving: the user is looking at it.
        for (const id of Object.keys(state.pending)) keep.add(id);
        for (const id of Object.keys(state.conflicts)) keep.add(id);
        items = {};
        for (const [id, r] of Object.entries(state.items)) if (keep.has(id)) items[id] = r;
      } else {
        items = { ...state.items };
      }
      const versions = { ...state.versions };
      let seen = state.seen;
      for (const resource of action.items) {
        // As `accept`: never an older version; the same one only where the card is missing.
        const known = versions[resource.id] ?? -1;
        if (resource.version < known || (resource.version === known && items[resource.id])) continue;
        items[resource.id] = withApplied(state.applied, resource);
        versions[resource.id] = resource.version;
        if (!resource.deleted_at) seen = noteFacets(seen, resource);
      }
      return { ...state, items, versions, seen };
    }
    case "upsert":
      return accept(state, action.resource);
    case "event": {
      const { type, data } = action.event;
      if (!type.startsWith("resource.") || !data || typeof data.id !== "string") return state;
      if (type === "resource.deleted" && data.hard) return remove(state, data.id);
      if ((state.versions[data.id] ?? -1) === HARD_DELETED) return state;
      return accept(state, stripHard(data));
    }
    case "removed":
      return remove(state, action.id);
    case "optimistic": {
      const before = state.pending[action.id];
      const patch = before ? { ...before.patch, ...action.patch } : action.patch;
      return {
        ...state,
        pending: { ...state.pending, [action.id]: { opId: action.opId, patch, baseVersion: before?.baseVersion ?? action.baseVersion } },
        conflicts: without(state.conflicts, action.id),
      };
    }
    case "draftAdded": {
      // Without a position of its own (callers give the one its create sends, see positionAtColumnEnd),
      // after its column's last card in this state.
      const { draft } = action;
      const position = draft.position || positionAtEnd(columnMates(state, draft.status));
      return { ...state, drafts: { ...state.drafts, [draft.id]: { ...draft, position } } };
    }
    case "draftSettled": {
      const next = { ...state, drafts: without(state.drafts, action.draftId) };
      return action.resource ? accept(next, action.resource) : next;
    }
    case "confirmed": {
      const next = accept(state, action.resource);
      if (state.pending[action.id]?.opId !== action.opId) return next;
      return { ...next, pending: without(next.pending, action.id) };
    }
    case "rolledBack":
      if (state.pending[action.id]?.opId !== action.opId) return state;
      return { ...state, pending: without(state.pending, action.id) };
    case "applied": {
      // Kept apart, in version order; those the server's copy already has are dropped.
      const seen = state.versions[action.id] ?? -1;
      const kept = (state.applied[action.id] ?? []).filter((e) => e.version > seen && e.version !== action.version);
      const edits = [...kept, { patch: action.patch, version: action.version }].sort((a, b) => a.version - b.version);
      const applied = { ...state.applied, [action.id]: edits };
      const server = state.items[action.id];
      const items = server ? { ...state.items, [action.id]: withApplied(applied, server) } : state.items;
      const pending = state.pending[action.id]?.opId === action.opId ? without(state.pending, action.id) : state.pending;
      return { ...state, applied, items, pending };
    }
    case "conflicted": {
      const pending = state.pending[action.id];
      const next = accept(state, action.current);
      if (pending?.opId !== action.opId) return next;
      return {
        ...next,
        pending: without(next.pending, action.id),
        conflicts: { ...next.conflicts, [action.id]: { patch: editFields(pending.patch), baseVersion: pending.baseVersion } },
      };
    }
    case "conflictResolved":
      return { ...state, conflicts: without(state.conflicts, action.id) };
  }
}

// ---------------------------------------------------------------- reading

/** What to show for `id`: the server's resource with the unconfirmed local edit on top. */
export function viewOf(state: BoardState, id: string): Resource | undefined {
  const server = state.items[id];
  if (!server) return undefined;
  const pending = state.pending[id];
  return pending ? { ...server, ...definedFields(pending.patch) } : server;
}

function definedFields(patch: ResourcePatch): Partial<Resource> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) if (value !== undefined) out[key] = value;
  return out as Partial<Resource>;
}

export function isPending(state: BoardState, id: string): boolean {
  return id in state.pending || id in state.drafts;
}

/** The board's own order within a column (`position`, kept on the server), or one of the listing's sorts. */
export type BoardSort = SortField | "position";

export interface BoardFilter {
  status?: string | null;
  kind?: string | null;
  tag?: string | null;
  /** Full-text search: the server does it for listings; live additions are matched loosely here. */
  q?: string | null;
  sort?: BoardSort;
  order?: SortOrder;
}

export const DEFAULT_STATUSES = ["open", "in_progress", "done"] as const;

export interface Column {
  status: string;
  items: Resource[];
}

/**
 * A loose stand-in for the server's `websearch_to_tsquery`, for resources
 * that arrive live while a search is on: `a or b` matches either side; on a
 * side, every plain word (quotes ignored, `-excluded` words skipped) appears
 * in the title or body as the start of a word (so `run` matches "running",
 * as English stemming would).
 */
export function matchesSearch(resource: Pick<Resource, "title" | "body">, q: string): boolean {
  const normal = (text: string) => ` ${text.toLowerCase().replace(/[^\p{L}\p{N}-]+/gu, " ")}`;
  const haystack = normal(`${resource.title} ${resource.body}`);
  const alternatives = normal(q.replace(/["']/g, " "))
    .split(/\sor\s/)
    .map((side) => side.split(/\s+/).filter((w) => w && !w.startsWith("-")));
  if (alternatives.every((words) => words.length === 0)) return true;
  return alternatives.some((words) => words.length > 0 && words.every((w) => haystack.includes(` ${w}`)));
}

export function matchesFilter(resource: Resource, filter: BoardFilter): boolean {
  if (resource.deleted_at) return false;
  if (filter.status && resource.status !== filter.status) return false;
  if (filter.kind && resource.kind !== filter.kind) return false;
  if (filter.tag && !resource.tags.includes(filter.tag)) return false;
  if (filter.q && !matchesSearch(resource, filter.q)) return false;
  return true;
}

export function compareResources(sort: BoardSort = "created_at", order: SortOrder = "desc") {
  if (sort === "position") return order === "desc" ? (a: Resource, b: Resource) => compareByPosition(b, a) : compareByPosition;
  const sign = order === "asc" ? 1 : -1;
  return (a: Resource, b: Resource): number => {
    let c: number;
    if (sort === "title") c = a.title.localeCompare(b.title, undefined, { sensitivity: "base" });
    else c = Date.parse(a[sort]) - Date.parse(b[sort]);
    if (c === 0) c = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return sign * c;
  };
}

/**
 * The columns: open, in progress, done, then every other status seen (A–Z),
 * each with the visible resources (local edits applied) in the chosen order.
 * A status filter shows its column only.
 */
export function selectColumns(state: BoardState, filter: BoardFilter = {}): Column[] {
  const visible: Resource[] = [];
  const seen = new Set<string>();
  for (const id of Object.keys(state.items)) {
    const resource = viewOf(state, id)!;
    if (!resource.deleted_at) seen.add(resource.status);
    if (matchesFilter(resource, filter)) visible.push(resource);
  }
  for (const draft of Object.values(state.drafts)) if (matchesFilter(draft, filter)) visible.push(draft);
  const extra = [...seen].filter((s) => !(DEFAULT_STATUSES as readonly string[]).includes(s)).sort();
  let statuses = [...DEFAULT_STATUSES, ...extra];
  if (filter.status) statuses = [filter.status];
  const compare = compareResources(filter.sort, filter.order);
  return statuses.map((status) => ({
    status,
    items: visible.filter((r) => r.status === status).sort(compare),
  }));
}

/** Kinds, tags and statuses for the filter menus: everything seen since the board opened, A–Z (statuses: the defaults first). */
export function selectFacets(state: BoardState): { kinds: string[]; tags: string[]; statuses: string[] } {
  const extra = state.seen.statuses.filter((s) => !(DEFAULT_STATUSES as readonly string[]).includes(s)).sort();
  return { kinds: [...state.seen.kinds].sort(), tags: [...state.seen.tags].sort(), statuses: [...DEFAULT_STATUSES, ...extra] };
}

export function statusLabel(status: string): string {
  const text = status.replace(/[_-]+/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
