import { isStaleVersion, type Resource, type ResourcePatch } from "../api/resources";
import { HubError } from "../errors";
import type { BoardRpc } from "./rpc";
import type { BoardAction } from "./store";

export type EditOutcome =
  | { kind: "saved"; resource: Resource }
  /**
   * Made, but the hub's answer was too large to send (`too_large` with
   * `details.applied`): the card is over what NATS carries, so its event and
   * any read of it are too; it shows the edit at `version`, our copy.
   */
  | { kind: "applied"; version: number }
  /** Someone changed it first: `current` is their version (now in the store, with the conflict). */
  | { kind: "conflict"; current: Resource }
  /** Refused or failed for another reason; the local edit was rolled back. */
  | { kind: "failed"; error: unknown };

export interface EditDeps {
  api: Pick<BoardRpc, "update" | "get">;
  dispatch: (action: BoardAction) => void;
  workspaceId: string;
  newOpId?: () => string;
  /** Our own changes to one resource go one after another (see {@link EditChain}). */
  chain?: EditChain;
}

let counter = 0;
const defaultOpId = () => `op-${Date.now().toString(36)}-${++counter}`;

/**
 * Our changes to one resource, one after another. A change made while an
 * earlier one is still unconfirmed (offline, say) was made on top of it: it
 * waits for it, then goes with the version the earlier one produced instead of
 * the older one the card still had — otherwise the second of two moves made
 * offline would be refused as stale by the first.
 */
export class EditChain {
  private readonly tails = new Map<string, { base: number; done: Promise<{ version: number } | null> }>();

  run<T extends { version: number }>(id: string, baseVersion: number, send: (version: number) => Promise<T>): Promise<T> {
    const prev = this.tails.get(id);
    const result = (async () => {
      let version = baseVersion;
      if (prev) {
        const earlier = await prev.done;
        if (earlier && prev.base === baseVersion) version = earlier.version;
      }
      return send(version);
    })();
    const entry = { base: baseVersion, done: result.then((r) => r, () => null) };
    this.tails.set(id, entry);
    void entry.done.then(() => {
      if (this.tails.get(id) === entry) this.tails.delete(id);
    });
    return result;
  }
}

/** Whether `error` says the hub made the change though it could not send its answer (see {@link HubError.applied}). */
export function madeAnyway(error: unknown): boolean {
  return error instanceof HubError && error.applied;
}

/**
 * An optimistic edit reconciled by version: show `patch` at once, send it
 * (an RPC through the outbox: queued while offline) with `expected_version`;
 * on success take the server's resource; made but unanswered (too large an
 * answer), keep it shown at the version it made (one on from the one it was
 * sent at); on a stale version fetch the newer one and record a conflict (the
 * user decides: retry on top of it, or keep theirs); on anything else roll back.
 */
export async function applyEdit(deps: EditDeps, id: string, patch: ResourcePatch, baseVersion: number): Promise<EditOutcome> {
  const opId = (deps.newOpId ?? defaultOpId)();
  deps.dispatch({ type: "optimistic", id, opId, patch, baseVersion });
  const send = async (version: number): Promise<Resource | { applied: true; version: number }> => {
    try {
      return await deps.api.update(deps.workspaceId, id, version, patch);
    } catch (error) {
      if (madeAnyway(error)) return { applied: true, version: version + 1 };
      throw error;
    }
  };
  try {
    const result = await (deps.chain ? deps.chain.run(id, baseVersion, send) : send(baseVersion));
    if ("applied" in result) {
      deps.dispatch({ type: "applied", id, opId, patch, version: result.version });
      return { kind: "applied", version: result.version };
    }
    deps.dispatch({ type: "confirmed", id, opId, resource: result });
    return { kind: "saved", resource: result };
  } catch (error) {
    return settleFailure(deps, id, opId, error);
  }
}

async function settleFailure(deps: EditDeps, id: string, opId: string, error: unknown): Promise<EditOutcome> {
  if (isStaleVersion(error)) {
    try {
      const current = await deps.api.get(deps.workspaceId, id, { includeDeleted: true });
      deps.dispatch({ type: "conflicted", id, opId, current });
      return { kind: "conflict", current };
    } catch (fetchError) {
      deps.dispatch({ type: "rolledBack", id, opId });
      return { kind: "failed", error: fetchError };
    }
  }
  deps.dispatch({ type: "rolledBack", id, opId });
  return { kind: "failed", error };
}

export type DeleteOutcome = { kind: "deleted"; resource: Resource } | { kind: "failed"; error: unknown };

/**
 * An optimistic soft delete: the card leaves the board at once; the server's
 * answer carries no body, so the deleted copy is the one we had at the next
 * version (the `resource.deleted` event says the same and is then ignored).
 * Refused (stale, or anything else): the card comes back.
 *
 * `shown`: the resource as the user sees it (local edits applied, the server's version).
 */
export async function applyDelete(deps: EditDeps & { api: Pick<BoardRpc, "delete"> }, shown: Resource): Promise<DeleteOutcome> {
  const server = shown;
  const opId = (deps.newOpId ?? defaultOpId)();
  const { id } = server;
  deps.dispatch({ type: "optimistic", id, opId, patch: { deleted_at: new Date().toISOString() }, baseVersion: server.version });
  const send = async (version: number): Promise<Resource> => {
    await deps.api.delete(deps.workspaceId, id, version);
    return { ...server, version: version + 1, deleted_at: new Date().toISOString() };
  };
  try {
    const resource = await (deps.chain ? deps.chain.run(id, server.version, send) : send(server.version));
    deps.dispatch({ type: "confirmed", id, opId, resource });
    return { kind: "deleted", resource };
  } catch (error) {
    deps.dispatch({ type: "rolledBack", id, opId });
    return { kind: "failed", error };
  }
}

/**
 * Restore `resource` (soft-deleted, at the version shown): the hub's restored
 * copy — or, when the hub made the restore but could not send its copy back,
 * ours: the one we had, one version on, not deleted (as a delete keeps its
 * deleted copy). No event or read brings the server's then: the card is over
 * what NATS carries.
 */
export async function restoreResource(api: Pick<BoardRpc, "restore">, workspaceId: string, resource: Resource): Promise<Resource> {
  try {
    return await api.restore(workspaceId, resource.id, resource.version);
  } catch (error) {
    if (madeAnyway(error)) return { ...resource, version: resource.version + 1, deleted_at: null };
    throw error;
  }
}

/**
 * What to tell when a create was made but its card did not come back (see
 * {@link madeAnyway}). The card is over what NATS carries: its event is set
 * aside and a read of it is refused as too large, so it does not show.
 */
export function createdUnseen(title: string): { title: string; description: string } {
  return {
    title: `“${title}” was created`,
    description: "It is too large for the server to send back, so it cannot be shown until an operator raises the server's message size limit (NATS max_payload).",
  };
}

/** What to tell when an edit was made but its card did not come back (see {@link madeAnyway}; the card shows our copy). */
export function savedUnseen(): { title: string; description: string } {
  return {
    title: "The change was saved",
    description:
      "The card is now too large for the server to send back: others will not see the change, and it cannot be read again until it is made smaller or an operator raises the server's message size limit (NATS max_payload).",
  };
}

/** The fields of `patch` that differ from `resource` (what a retry would still change). */
export function changedFields(resource: Resource, patch: ResourcePatch): ResourcePatch {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const current = (resource as Record<string, unknown>)[key];
    if (JSON.stringify(current) !== JSON.stringify(value)) out[key] = value;
  }
  return out as ResourcePatch;
}
