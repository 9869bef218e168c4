import { isStaleVersion, type Resource, type ResourcePatch, type ResourcesApi } from "../api/resources";
import type { BoardAction } from "./store";

export type EditOutcome =
  | { kind: "saved"; resource: Resource }
  /** Someone changed it first: `current` is their version (now in the store, with the conflict). */
  | { kind: "conflict"; current: Resource }
  /** Refused or failed for another reason; the local edit was rolled back. */
  | { kind: "failed"; error: unknown };

export interface EditDeps {
  api: Pick<ResourcesApi, "update" | "get">;
  dispatch: (action: BoardAction) => void;
  workspaceId: string;
  newOpId?: () => string;
}

let counter = 0;
const defaultOpId = () => `op-${Date.now().toString(36)}-${++counter}`;

/**
 * An optimistic edit reconciled by version: show `patch` at once, send it with
 * `If-Match: baseVersion`; on success take the server's resource; on a stale
 * version fetch the newer one and record a conflict (the user decides: retry
 * on top of it, or keep theirs); on anything else roll back.
 */
export async function applyEdit(deps: EditDeps, id: string, patch: ResourcePatch, baseVersion: number): Promise<EditOutcome> {
  const opId = (deps.newOpId ?? defaultOpId)();
  deps.dispatch({ type: "optimistic", id, opId, patch, baseVersion });
  try {
    const resource = await deps.api.update(deps.workspaceId, id, baseVersion, patch);
    deps.dispatch({ type: "confirmed", id, opId, resource });
    return { kind: "saved", resource };
  } catch (error) {
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
