import type { RealtimeClient } from "./client";
import type { PresenceInfo, PresenceMember } from "./types";

type PresenceEvent = { kind: "join" | "leave"; info: PresenceInfo };

/**
 * Keep a channel's member list: a `presence` snapshot after every
 * (re)subscription — joins and leaves may have been missed while away —
 * plus the `join`/`leave` pushes, keyed by client id. Pushes that arrive
 * while a snapshot is on its way are applied on top of it.
 */
export function watchPresence(
  client: RealtimeClient,
  channel: string,
  onChange: (members: PresenceMember[]) => void,
  onError: (error: unknown) => void = () => {},
): () => void {
  let members = new Map<string, PresenceMember>();
  let pending: PresenceEvent[] | null = null;
  let round = 0;
  let stopped = false;

  const emit = () => {
    if (!stopped) onChange([...members.values()]);
  };
  const apply = (event: PresenceEvent) => {
    if (event.kind === "join") {
      const previous = members.get(event.info.client);
      members.set(event.info.client, { ...previous, ...event.info });
    } else {
      members.delete(event.info.client);
    }
  };
  const onEvent = (event: PresenceEvent) => {
    if (pending) {
      pending.push(event);
      return;
    }
    apply(event);
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
    onJoin: (info) => onEvent({ kind: "join", info }),
    onLeave: (info) => onEvent({ kind: "leave", info }),
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
