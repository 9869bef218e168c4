import { HubError } from "../errors";
import { fullJitter } from "./backoff";
import type { RealtimeClient } from "./client";
import { browserTimers } from "./environment";
import { DEFAULTS } from "./options";
import type {
  PresenceDiff,
  PresenceMember,
  TimerHandle,
  Timers,
} from "./types";

/**
 * Whether the list shown may be out of date: the connection dropped (diffs are
 * missed until the resubscription's snapshot), its last snapshot failed (and
 * is asked for again), or the client halted, was released or closed, so no
 * snapshot or diff comes until it is connected again.
 */
export interface PresenceState {
  stale: boolean;
}

export interface PresenceOptions {
  /** The timers a failed snapshot's retry waits on (the client's own, in tests). */
  timers?: Timers;
  /** Uniform [0, 1); the backoff's jitter. */
  random?: () => number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

/**
 * Keep a channel's member list: a `presence` snapshot after every
 * (re)subscription — joins and leaves may have been missed while away —
 * plus the `presence` diff pushes (who joined, who left), keyed by client id.
 * Diffs that arrive while a snapshot is on its way are applied on top of it.
 * One diff, however many members it names, is one `onChange`.
 *
 * A snapshot that fails with an error that passes by itself (`unavailable`,
 * `timeout`, `rate_limited`, …) is asked for again after the hub's
 * `retry_after`, or else a backoff (full jitter), until one succeeds; until
 * then the list is shown as it was, with the diffs applied on top, and
 * `onChange` says `stale: true` (members may have left while away). Each
 * failure is also passed to `onError`; one that will not pass (`forbidden`,
 * `bad_request`) is not retried, and the list stays stale until the next
 * (re)subscription.
 *
 * From a socket drop until the snapshot of the resubscription, the list is
 * shown as it was, `stale: true` (joins and leaves meanwhile are missed); a
 * snapshot on its way at the drop is given up (the resubscription asks for its
 * own), and so is a retry that waits. A subscribe the hub refuses for good
 * (the channel `failed`: a gap's resubscribe, or the first subscribe, refused
 * e.g. `forbidden`) is met the same way: no diff or snapshot comes, and the
 * list (empty, if it was never followed) is stale until a later
 * subscription's snapshot. So a client released (the last
 * `retain()` let go: its socket closes), halted (signed out, a fatal close
 * code) or closed asks for nothing: the list stays stale until the client is
 * connected again and the resubscription's snapshot comes.
 */
export function watchPresence(
  client: RealtimeClient,
  channel: string,
  onChange: (members: PresenceMember[], state: PresenceState) => void,
  onError: (error: unknown) => void = () => {},
  options: PresenceOptions = {},
): () => void {
  const timers = options.timers ?? browserTimers;
  const random = options.random ?? Math.random;
  const baseMs = options.backoffBaseMs ?? DEFAULTS.backoffBaseMs;
  const maxMs = options.backoffMaxMs ?? DEFAULTS.backoffMaxMs;
  let members = new Map<string, PresenceMember>();
  let pending: PresenceDiff[] | null = null;
  let round = 0;
  let stale = false;
  let stopped = false;
  let retry: TimerHandle | null = null;
  /** The subscription stands on the current socket (its snapshot asked for); a drop ends that. */
  let following = false;
  /** Gives up the snapshot on its way, so the outbox does not send it again after a reconnect. */
  let inFlight: AbortController | null = null;

  const emit = () => {
    if (!stopped) onChange([...members.values()], { stale });
  };
  const apply = (diff: PresenceDiff) => {
    for (const info of diff.left) members.delete(info.client);
    for (const info of diff.joined) {
      const previous = members.get(info.client);
      members.set(info.client, { ...previous, ...info });
    }
  };
  const onDiff = (diff: PresenceDiff) => {
    if (pending) {
      pending.push(diff);
      return;
    }
    apply(diff);
    emit();
  };
  const cancelRetry = () => {
    if (retry !== null) timers.clearTimeout(retry);
    retry = null;
  };
  const abandonSnapshot = () => {
    inFlight?.abort();
    inFlight = null;
  };
  /** Halted (or closed): every call fails at once, and would until a `reconnect()`. */
  const halted = () => client.closed || client.getSnapshot().halted !== null;
  const markStale = () => {
    if (stale) return;
    stale = true;
    emit();
  };

  /** Ask for a snapshot in round `mine` (a newer subscription starts its own). */
  const snapshot = (mine: number, attempt: number) => {
    pending = [];
    const call = new AbortController();
    inFlight = call;
    client.presence(channel, { signal: call.signal }).then(
      (result) => {
        if (inFlight === call) inFlight = null;
        if (stopped || mine !== round) return;
        members = new Map((result.members ?? []).map((m) => [m.client, m]));
        const queued = pending ?? [];
        pending = null;
        stale = false;
        queued.forEach(apply);
        emit();
      },
      (error: unknown) => {
        if (inFlight === call) inFlight = null;
        if (stopped || mine !== round) return;
        const queued = pending ?? [];
        pending = null;
        stale = true;
        queued.forEach(apply);
        emit();
        onError(error);
        if (!(error instanceof HubError && error.retryable) || halted()) return;
        // At least what the hub asked, spread over half as long again: the sockets of a
        // reconnect fail together and would otherwise all ask again at the same moment.
        const delay =
          error.retryAfter !== null
            ? error.retryAfter * 1000 * (1 + random() / 2)
            : fullJitter(attempt, baseMs, maxMs, random);
        retry = timers.setTimeout(() => {
          retry = null;
          if (!stopped && mine === round) snapshot(mine, attempt + 1);
        }, delay);
      },
    );
  };

  // The client halting ends a retry that waits; what is shown can no longer be kept up to date.
  const stopWatchingState = client.onStateChange(() => {
    if (stopped || !halted()) return;
    cancelRetry();
    markStale();
  });

  const subscription = client.subscribe(channel, {
    onSubscribed() {
      following = true;
      cancelRetry();
      abandonSnapshot();
      snapshot(++round, 0);
    },
    onPresence: onDiff,
    onStatus(status) {
      // Pending again: the socket dropped. Failed: the hub refused the subscribe for good (a gap's resubscribe,
      // or the first one), so no diff or snapshot comes. Either way diffs are missed until a resubscription's
      // own snapshot; the one on its way (or a retry that waits) belongs to the subscription that ended.
      if (status !== "pending" && status !== "failed") return;
      if (!following) {
        // Never followed (its first subscribe refused): the empty list is not the channel's either.
        if (status === "failed") markStale();
        return;
      }
      following = false;
      round += 1;
      cancelRetry();
      abandonSnapshot();
      pending = null;
      markStale();
    },
    onUnsubscribed() {
      following = false;
      cancelRetry();
      abandonSnapshot();
      round += 1; // a snapshot on its way is of a subscription that ended
      pending = null;
      stale = false;
      members = new Map();
      emit();
    },
  });

  return () => {
    stopped = true;
    cancelRetry();
    abandonSnapshot();
    stopWatchingState();
    subscription.unsubscribe();
  };
}
