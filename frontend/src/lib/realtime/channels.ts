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

  /** The socket closed: every subscription is pending again. */
  socketClosed(): void {
    for (const ch of this.channels.values()) {
      ch.subscribeId = null;
      if (ch.status === "subscribing" || ch.status === "subscribed") ch.setStatus("pending");
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
      if ((ch.status === "subscribed" || ch.status === "subscribing") && this.wire.live) {
        this.wire.command({ op: "unsubscribe", channel: ch.name }, { onResult: () => {}, onError: () => {} });
      }
    }, this.rt.o.releaseDelayMs);
  }

  private clearTimers(ch: ChannelState, includeRelease = true): void {
    if (ch.retryTimer !== null) this.rt.timers.clearTimeout(ch.retryTimer);
    ch.retryTimer = null;
    if (includeRelease && ch.releaseTimer !== null) {
      this.rt.timers.clearTimeout(ch.releaseTimer);
      ch.releaseTimer = null;
    }
  }

  private sendSubscribe(ch: ChannelState): void {
    const since = ch.position ?? undefined;
    const command: ClientCommand = since ? { op: "subscribe", channel: ch.name, since } : { op: "subscribe", channel: ch.name };
    const isCurrent = () => this.channels.get(ch.name) === ch && ch.subscribeId === id;
    const id = this.wire.command(command, {
      timeoutMs: this.rt.o.rpcTimeoutMs,
      onResult: (raw) => {
        if (!isCurrent()) return;
        const result = parseSubscribeResult(raw);
        if (!result) {
          this.onSubscribeError(ch, new HubError({ code: "internal", message: "Malformed subscribe reply", status: 500 }));
          return;
        }
        ch.retryAttempt = 0;
        ch.applySubscribeResult(result, since);
      },
      onError: (error) => {
        if (isCurrent()) this.onSubscribeError(ch, error);
      },
    });
    if (id !== null) ch.beginSubscribe(id);
  }

  private onSubscribeError(ch: ChannelState, error: HubError): void {
    ch.subscribeId = null;
    if (!error.retryable) {
      ch.fail(error);
      return;
    }
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
    this.wire.command({ op: "unsubscribe", channel: ch.name }, { onResult: () => {}, onError: () => {} });
    this.sendSubscribe(ch);
  }
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
