import type { RealtimeClient } from "../realtime/client";
import type { Resource, ResourceCreateInput, ResourcePatch } from "../api/resources";

/**
 * Board mutations as RPCs on the tab's one WebSocket (docs/protocol.md, RPC):
 * `resources.update` ⇔ `PATCH …/resources/{id}`, with `expected_version` for
 * `If-Match`. Each goes through the realtime client's outbox with an
 * idempotency key: while the socket is down it waits there, it is sent (again,
 * with the same key) after every reconnect until answered, and the hub applies
 * it once however often it arrives.
 *
 * Their deadline is long on purpose ({@link QUEUED_FOR_MS}): an edit made
 * offline is kept until the connection is back, not dropped after the usual
 * 30 s. It lives in the tab's memory: closing the tab loses what was not sent.
 */
export const QUEUED_FOR_MS = 24 * 60 * 60 * 1000;

type Rpc = Pick<RealtimeClient, "mutate" | "rpc">;

export interface RpcCallOptions {
  signal?: AbortSignal;
  /** Reuse one key to retry the same create. */
  idempotencyKey?: string;
}

/**
 * Every call goes through the typed overloads of `realtime.rpc`/`mutate`
 * (`../realtime/rpc-types`): the method is a literal of the generated
 * `operations`, its params and result are that operation's, so a wrong or
 * missing param fails `tsc`.
 */
export function boardRpc(realtime: Rpc) {
  const queued = (options: RpcCallOptions) => ({ timeoutMs: QUEUED_FOR_MS, signal: options.signal, idempotencyKey: options.idempotencyKey });
  const ref = (workspaceId: string, resourceId: string) => ({ workspace_id: workspaceId, resource_id: resourceId });
  return {
    get(workspaceId: string, resourceId: string, options: { includeDeleted?: boolean; signal?: AbortSignal } = {}): Promise<Resource> {
      return realtime.rpc(
        "resources.get",
        { ...ref(workspaceId, resourceId), include_deleted: options.includeDeleted ?? false },
        { signal: options.signal },
      );
    },

    create(workspaceId: string, body: ResourceCreateInput, options: RpcCallOptions = {}): Promise<Resource> {
      return realtime.mutate("resources.create", { workspace_id: workspaceId, ...body }, queued(options));
    },

    /** Refused with `conflict` (`details.reason = "stale_version"`) when the resource is no longer at `version`. */
    update(workspaceId: string, resourceId: string, version: number, patch: ResourcePatch, options: RpcCallOptions = {}): Promise<Resource> {
      return realtime.mutate("resources.update", { ...ref(workspaceId, resourceId), expected_version: version, ...patch }, queued(options));
    },

    /** Soft delete (restorable from the Trash). */
    async delete(workspaceId: string, resourceId: string, version: number, options: RpcCallOptions = {}): Promise<void> {
      await realtime.mutate("resources.delete", { ...ref(workspaceId, resourceId), expected_version: version }, queued(options));
    },

    restore(workspaceId: string, resourceId: string, version: number, options: RpcCallOptions = {}): Promise<Resource> {
      return realtime.mutate("resources.restore", { ...ref(workspaceId, resourceId), expected_version: version }, queued(options));
    },
  };
}

export type BoardRpc = ReturnType<typeof boardRpc>;
