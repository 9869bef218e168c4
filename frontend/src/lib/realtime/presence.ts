import type { RealtimeClient } from "./client";
import type { PresenceDiff, PresenceMember } from "./types";

/**
 * Keep a channel's member list: a `presence` snapshot after every
 * (re)subscription — joins and leaves may have been missed while away —
 * plus the `presence` diff pushes (who joined, who left), keyed by client id.
 * Diffs that arrive while a snapshot is on its way are applied on top of it.
 * One diff, however many members it names, is one `onChange`.
 */
export function watchPresence(
  client: RealtimeClient,
  channel: string,
  onChange: (members: PresenceMember[]) => void,
  onError: (error: unknown) => void = () => {},
): () => void {
  let members = new Map<string, PresenceMember>();
  let pending: PresenceDiff[] | null = null;
  let round = 0;
  let stopped = false;

  const emit = () => {
    if (!stopped) onChange([...members.values()]);
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

  const subscription = client.subscribe(channel, {
    onSubscribed() {
      const mine = ++round;
      pending = [];
      client.presence(channel).then(
        (result) => {
          if (stopped || mine !== round) return;
          members = new Map((result.members ?? []).map((m) => [m.client, m]));
          const queued = pending ?? [];
          pending = null;
          queued.forEach(apply);
          emit();
        },
        (error: unknown) => {
          if (stopped || mine !== round) return;
          const queued = pending ?? [];
          pending = null;
          queued.forEach(apply);
          emit();
          onError(error);
        },
      );
    },
    onPresence: onDiff,
    onUnsubscribed() {
      members = new Map();
      emit();
    },
  });

  return () => {
    stopped = true;
    subscription.unsubscribe();
  };
}
