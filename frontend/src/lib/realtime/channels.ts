import { HubError, isRecord } from "../errors";
import { fullJitter } from "./backoff";
import { ChannelState, type ChannelHandlers, type Subscription } from "./channel";
import type { Runtime, Wire } from "./options";
import type { ClientCommand, PresenceInfo, SubscribeResult } from "./types";

/**
 * The channels of one client: listeners of a channel share one hub
 * subscription (reference counted), which survives reconnects and resumes from
 * the last offset seen (`since`); the `unsubscribe` goes out `releaseDelayMs`
 * after the last listener left. Retryable subscribe errors are retried with
 * backoff; a `gap` resubscribes from the last offset.
 *
 * A subscribe unanswered within `rpcTimeoutMs` is retried too, but the hub may
 * still be working on it (a slow history read) and then hold the subscription:
 * its reply is still taken until the retry goes out, and the retry is an
 * `unsubscribe` followed by the `subscribe` (the hub handles a socket's
 * commands in order), so it is not refused `conflict`. A `conflict` (already
 * subscribed) is retried the same way.
 */
export class Channels {
  private readonly channels = new Map<string, ChannelState>();

  constructor(
    private readonly rt: Runtime,
    private readonly wire: Wire,
  ) {}

  subscribe<T>(channel: string, handlers: ChannelHandlers<T>): Subscription {
    let ch = this.channels.get(channel);
    if (!ch) {
      ch = new ChannelState(channel, this.rt.reportListenerError);
      this.channels.set(channel, ch);
    }
    if (ch.releaseTimer !== null) {
      this.rt.timers.clearTimeout(ch.releaseTimer);
      ch.releaseTimer = null;
    }
    const listener = handlers as ChannelHandlers<never>;
    ch.listeners.add(listener);
    ch.greet(listener);
    if (ch.status === "failed" || ch.status === "unsubscribed") ch.setStatus("pending");
    if (ch.status === "pending" && this.wire.live && ch.retryTimer === null) this.sendSubscribe(ch);

    const state = ch;
    let done = false;
    return {
      channel,
      get status() {
        return state.status;
      },
      get position() {
        return state.position;
      },
      unsubscribe: () => {
        if (done) return;
        done = true;
        this.removeListener(state, listener);
      },
    };
  }

  /** Channels with at least one listener. */
  get names(): string[] {
    return [...this.channels.values()].filter((ch) => ch.listeners.size > 0).map((ch) => ch.name);
  }

  /** The connection is live: subscribe every wanted channel that is not (with `since` where known). */
  resume(): void {
    for (const ch of this.channels.values()) {
      if (ch.listeners.size > 0 && ch.status === "pending" && ch.retryTimer === null) this.sendSubscribe(ch);
    }
  }

  /**
   * The socket closed: every subscription is pending again, and so is one
   * refused for a reason that was the old socket's (see {@link refusedBySocket}).
   */
  socketClosed(): void {
    for (const ch of this.channels.values()) {
      ch.subscribeId = null;
      ch.hubMayHold = false;
      this.clearReplyTimer(ch);
      if (ch.status === "subscribing" || ch.status === "subscribed" || (ch.status === "failed" && refusedBySocket(ch.error))) {
        ch.setStatus("pending");
      }
    }
  }

  /** The client closed for good: forget every channel. */
  clear(): void {
    for (const ch of this.channels.values()) this.clearTimers(ch);
    this.channels.clear();
  }

  /** A push about one channel (`pub`, `presence`, `unsubscribed`, `gap`); false when it is none of these. */
  onPush(frame: Record<string, unknown>): boolean {
    const ch = typeof frame.channel === "string" ? this.channels.get(frame.channel) : undefined;
    switch (frame.push) {
      case "pub":
        if (ch && typeof frame.offset === "number") ch.receive({ channel: ch.name, offset: frame.offset, data: frame.data });
        return true;
      case "presence":
        if (ch) ch.presence({ joined: presenceInfos(frame.joined), left: presenceInfos(frame.left) });
        return true;
      case "unsubscribed":
        if (ch) {
          this.clearTimers(ch, false);
          ch.dropped({
            code: typeof frame.code === "number" || typeof frame.code === "string" ? frame.code : undefined,
            reason: typeof frame.reason === "string" ? frame.reason : undefined,
          });
        }
        return true;
      case "gap":
        if (ch) this.resync(ch);
        return true;
      default:
        return false;
    }
  }

  private removeListener(ch: ChannelState, listener: ChannelHandlers<never>): void {
    ch.listeners.delete(listener);
    if (ch.listeners.size > 0 || ch.releaseTimer !== null) return;
    ch.releaseTimer = this.rt.timers.setTimeout(() => {
      ch.releaseTimer = null;
      if (ch.listeners.size > 0 || this.channels.get(ch.name) !== ch) return;
      this.channels.delete(ch.name);
      this.clearTimers(ch);
      if (ch.subscribeId !== null) this.wire.forget(ch.subscribeId);
      if ((ch.status === "subscribed" || ch.status === "subscribing" || ch.hubMayHold) && this.wire.live) this.sendUnsubscribe(ch);
    }, this.rt.o.releaseDelayMs);
  }

  private clearTimers(ch: ChannelState, includeRelease = true): void {
    if (ch.retryTimer !== null) this.rt.timers.clearTimeout(ch.retryTimer);
    ch.retryTimer = null;
    this.clearReplyTimer(ch);
    if (includeRelease && ch.releaseTimer !== null) {
      this.rt.timers.clearTimeout(ch.releaseTimer);
      ch.releaseTimer = null;
    }
  }

  private clearReplyTimer(ch: ChannelState): void {
    if (ch.replyTimer !== null) this.rt.timers.clearTimeout(ch.replyTimer);
    ch.replyTimer = null;
  }

  private sendUnsubscribe(ch: ChannelState): number | null {
    return this.wire.command({ op: "unsubscribe", channel: ch.name }, { onResult: () => {}, onError: () => {} });
  }

  private sendSubscribe(ch: ChannelState): void {
    this.clearReplyTimer(ch); // one subscribe's deadline at a time (a resync sends another)
    // A subscribe that went unanswered in time: from here its late reply no longer counts.
    if (ch.subscribeId !== null) this.wire.forget(ch.subscribeId);
    ch.subscribeId = null;
    if (ch.hubMayHold && this.sendUnsubscribe(ch) !== null) ch.hubMayHold = false;
    const since = ch.position ?? undefined;
    const command: ClientCommand = since ? { op: "subscribe", channel: ch.name, since } : { op: "subscribe", channel: ch.name };
    const isCurrent = () => this.channels.get(ch.name) === ch && ch.subscribeId === id;
    const id = this.wire.command(command, {
      onResult: (raw) => {
        if (!isCurrent()) return;
        this.clearTimers(ch, false);
        ch.hubMayHold = false;
        const result = parseSubscribeResult(raw);
        if (!result) {
          this.onSubscribeError(ch, new HubError({ code: "internal", message: "Malformed subscribe reply", status: 500 }));
          return;
        }
        ch.retryAttempt = 0;
        ch.applySubscribeResult(result, since);
      },
      onError: (error) => {
        if (!isCurrent()) return;
        this.clearTimers(ch, false);
        ch.hubMayHold = false;
        this.onSubscribeError(ch, error);
      },
    });
    if (id === null) return;
    ch.beginSubscribe(id);
    ch.replyTimer = this.rt.timers.setTimeout(() => {
      ch.replyTimer = null;
      if (!isCurrent()) return;
      // Still being answered, perhaps: keep `subscribeId`, so a reply before the retry is taken.
      ch.hubMayHold = true;
      this.scheduleRetry(ch, HubError.local("timeout", `No reply to subscribe within ${this.rt.o.rpcTimeoutMs} ms`));
    }, this.rt.o.rpcTimeoutMs);
  }

  private onSubscribeError(ch: ChannelState, error: HubError): void {
    ch.subscribeId = null;
    if (error.code === "conflict") {
      // Already subscribed (a subscribe of ours the hub finished after we gave up on it): unsubscribe, then subscribe again.
      ch.hubMayHold = true;
    } else if (!error.retryable) {
      ch.fail(error);
      return;
    }
    this.scheduleRetry(ch, error);
  }

  private scheduleRetry(ch: ChannelState, error: HubError): void {
    ch.setStatus("pending");
    const { o, random, timers } = this.rt;
    const delay = fullJitter(ch.retryAttempt, o.backoffBaseMs, o.backoffMaxMs, random);
    ch.retryAttempt += 1;
    this.rt.log("subscribe_retry", { channel: ch.name, delay, error });
    ch.retryTimer = timers.setTimeout(() => {
      ch.retryTimer = null;
      if (this.wire.live && ch.status === "pending" && ch.listeners.size > 0 && this.channels.get(ch.name) === ch) {
        this.sendSubscribe(ch);
      }
    }, delay);
  }

  /** The hub dropped publications for us (slow consumer): resubscribe from the last offset we saw. */
  private resync(ch: ChannelState): void {
    if (!this.wire.live || (ch.status !== "subscribed" && ch.status !== "subscribing")) return;
    this.sendUnsubscribe(ch);
    this.sendSubscribe(ch);
  }
}

/**
 * A refusal that was about the socket, not the channel, so a new socket may
 * subscribe: its session was revoked (`unauthorized`) or its subscription
 * limit was reached (`too_large`).
 */
function refusedBySocket(error: HubError | null): boolean {
  return error !== null && (error.code === "unauthorized" || error.code === "too_large");
}

function parseSubscribeResult(raw: unknown): SubscribeResult | null {
  if (!isRecord(raw) || typeof raw.offset !== "number") return null;
  if (typeof raw.epoch !== "string" && typeof raw.epoch !== "number") return null;
  const publications = Array.isArray(raw.publications) ? raw.publications : [];
  return {
    channel: typeof raw.channel === "string" ? raw.channel : "",
    offset: raw.offset,
    epoch: String(raw.epoch),
    recovered: raw.recovered === true,
    publications: publications
      .filter((p): p is { offset: number; data: unknown } => isRecord(p) && typeof p.offset === "number")
      .sort((a, b) => a.offset - b.offset),
  };
}

/** The well-formed entries of a `presence` push's `joined` or `left` list. */
function presenceInfos(value: unknown): PresenceInfo[] {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is PresenceInfo => isRecord(v) && typeof v.client === "string");
}
