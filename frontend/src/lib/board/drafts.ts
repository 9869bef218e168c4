import type { Resource, ResourceCreateInput } from "../api/resources";

/**
 * A created card before the server answers: the idempotency key stands in for
 * its id. Without a `position` in the request the store puts it after its
 * column's last card, where the hub will put it too.
 */
export function draftOf(key: string, workspaceId: string, body: ResourceCreateInput): Resource {
  const now = new Date().toISOString();
  return {
    id: key,
    workspace_id: workspaceId,
    kind: body.kind,
    title: body.title,
    body: body.body ?? "",
    status: body.status ?? "open",
    position: body.position ?? "",
    tags: body.tags ?? [],
    data: {},
    version: 0,
    created_by: null,
    updated_by: null,
    created_at: now,
    updated_at: now,
    deleted_at: null,
  };
}
