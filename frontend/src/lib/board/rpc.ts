import type { RealtimeClient } from "../realtime/client";
import { HubError } from "../errors";
import type { Resource, ResourceCreateInput, ResourcePatch, ResourcesApi } from "../api/resources";

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
 *
 * A create or update whose frame is over the socket's frame limit (64 KiB; a
 * description may be 100,000 characters) is refused by the client with a
 * local `too_large` before it goes out, or fails so after the hub closed the
 * socket with 1009 for it: it then goes over REST (`rest`) instead, with the
 * same idempotency key and the same version as `If-Match`, so the hub applies
 * it at most once and a stale version is still a conflict (412). That request
 * is not queued: made offline, it fails like any REST call.
 */
export const QUEUED_FOR_MS = 24 * 60 * 60 * 1000;

type Rpc = Pick<RealtimeClient, "mutate" | "rpc" | "fitsFrame">;
/** The REST changes a frame too large for the socket goes through. */
export type RestChanges = Pick<ResourcesApi, "create" | "update">;

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
export function boardRpc(realtime: Rpc, rest?: RestChanges) {
  const queued = (options: RpcCallOptions) => ({ timeoutMs: QUEUED_FOR_MS, signal: options.signal, idempotencyKey: options.idempotencyKey });
  const ref = (workspaceId: string, resourceId: string) => ({ workspace_id: workspaceId, resource_id: resourceId });
  /** `call` as an RPC; if its frame is too large for the socket, `viaRest` with the call's idempotency key. */
  const orOverRest = async (call: () => Promise<Resource>, viaRest: (idempotencyKey: string) => Promise<Resource>): Promise<Resource> => {
    try {
      return await call();
    } catch (error) {
      const key = tooLargeFrameKey(error);
      if (rest && key !== null) return viaRest(key);
      throw error;
    }
  };
  const createParams = (workspaceId: string, body: ResourceCreateInput) => ({ workspace_id: workspaceId, ...body });
  const updateParams = (workspaceId: string, resourceId: string, version: number, patch: ResourcePatch) => ({
    ...ref(workspaceId, resourceId),
    expected_version: version,
    ...patch,
  });
  return {
    /**
     * Whether `create`/`update` with these arguments fits in a socket frame,
     * so it can wait in the outbox while the socket is down. One that does
     * not goes over REST at once, which is not queued: made offline, it fails.
     */
    fits: {
      create: (workspaceId: string, body: ResourceCreateInput, options: RpcCallOptions = {}): boolean =>
        realtime.fitsFrame("resources.create", createParams(workspaceId, body), options.idempotencyKey),
      update: (workspaceId: string, resourceId: string, version: number, patch: ResourcePatch): boolean =>
        realtime.fitsFrame("resources.update", updateParams(workspaceId, resourceId, version, patch)),
    },

    get(workspaceId: string, resourceId: string, options: { includeDeleted?: boolean; signal?: AbortSignal } = {}): Promise<Resource> {
      return realtime.rpc(
        "resources.get",
        { ...ref(workspaceId, resourceId), include_deleted: options.includeDeleted ?? false },
        { signal: options.signal },
      );
    },

    create(workspaceId: string, body: ResourceCreateInput, options: RpcCallOptions = {}): Promise<Resource> {
      return orOverRest(
        () => realtime.mutate("resources.create", createParams(workspaceId, body), queued(options)),
        (idempotencyKey) => rest!.create(workspaceId, body, { signal: options.signal, idempotencyKey }),
      );
    },

    /**
     * Refused with `conflict` (`details.reason = "stale_version"`) when the resource is no longer at `version`
     * (412 `precondition_failed` when it went over REST).
     */
    update(workspaceId: string, resourceId: string, version: number, patch: ResourcePatch, options: RpcCallOptions = {}): Promise<Resource> {
      return orOverRest(
        () => realtime.mutate("resources.update", updateParams(workspaceId, resourceId, version, patch), queued(options)),
        (idempotencyKey) => rest!.update(workspaceId, resourceId, version, patch, { signal: options.signal, idempotencyKey }),
      );
    },

    /**
     * Soft delete (restorable from the Trash). Done also when the hub made it
     * but could not send its answer (`too_large` with `details.applied`).
     */
    async delete(workspaceId: string, resourceId: string, version: number, options: RpcCallOptions = {}): Promise<void> {
      try {
        await realtime.mutate("resources.delete", { ...ref(workspaceId, resourceId), expected_version: version }, queued(options));
      } catch (error) {
        if (!(error instanceof HubError && error.applied)) throw error;
      }
    },

    restore(workspaceId: string, resourceId: string, version: number, options: RpcCallOptions = {}): Promise<Resource> {
      return realtime.mutate("resources.restore", { ...ref(workspaceId, resourceId), expected_version: version }, queued(options));
    },
  };
}

export type BoardRpc = ReturnType<typeof boardRpc>;

/** The idempotency key of a mutation the realtime client failed because its frame is over the size limit; else null. */
function tooLargeFrameKey(error: unknown): string | null {
  if (!(error instanceof HubError) || !error.local || error.code !== "too_large") return null;
  const key = error.details.idempotency_key;
  return typeof key === "string" ? key : null;
}
