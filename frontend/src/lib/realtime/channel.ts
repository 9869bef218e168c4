import { type HubError } from "../errors";
import type { PresenceDiff, Publication, StreamPosition, SubscribeResult, TimerHandle } from "./types";

/**
 * - `pending`: wanted, not (yet) subscribed on the current connection
 * - `subscribing`: subscribe sent; live publications are buffered until the reply
 * - `subscribed`: publications flow
 * - `unsubscribed`: the hub dropped the subscription (e.g. membership revoked)
 * - `failed`: the hub refused the subscribe (e.g. forbidden, not_found)
 */
export type ChannelStatus = "pending" | "subscribing" | "subscribed" | "unsubscribed" | "failed";

export interface SubscribedContext {
  channel: string;
  offset: number;
  epoch: string;
  /** The hub replayed everything missed since the offset we gave it. */
  recovered: boolean;
  /** We asked to resume from a known position (`since` was sent). */
  resumed: boolean;
  /**
   * A greeting: this listener joined a subscription that was already running
   * (no subscribe was sent for it), so nothing was missed meanwhile.
   */
  joined?: boolean;
}

export type ReloadReason = "not_recovered" | "epoch_changed";

export interface UnsubscribedInfo {
  code?: number | string;
  reason?: string;
}

export interface ChannelHandlers<T = unknown> {
  onPublication?(publication: Publication<T>): void;
  /** Every (re)subscription, after the reply and before its replayed publications. */
  onSubscribed?(context: SubscribedContext): void;
  /** Events were lost (not recovered, gap, epoch change): reload this channel's state over REST. */
  onReload?(reason: ReloadReason, context: SubscribedContext): void;
  /** Who joined and who left the channel since the last diff (channels with presence). */
  onPresence?(diff: PresenceDiff): void;
  /** The hub dropped the subscription; it is not renewed by itself. */
  onUnsubscribed?(info: UnsubscribedInfo): void;
  /** The hub refused the subscription. */
  onError?(error: HubError): void;
  onStatus?(status: ChannelStatus): void;
}

export interface Subscription {
  readonly channel: string;
  readonly status: ChannelStatus;
  readonly position: StreamPosition | null;
  unsubscribe(): void;
}

type Listener = ChannelHandlers<never>;

/** One channel's bookkeeping: listeners, position, status, buffered live publications. */
export class ChannelState {
  readonly listeners = new Set<Listener>();
  status: ChannelStatus = "pending";
  error: HubError | null = null;
  lastContext: SubscribedContext | null = null;
  subscribeId: number | null = null;
  /**
   * The hub may hold a subscription of ours to this channel that we do not
   * track: a subscribe went unanswered past its deadline (the hub may still
   * finish it), or the hub said `conflict` (already subscribed). The next
   * subscribe on this socket goes after an `unsubscribe`.
   */
  hubMayHold = false;
  replyTimer: TimerHandle | null = null;
  retryAttempt = 0;
  retryTimer: TimerHandle | null = null;
  releaseTimer: TimerHandle | null = null;
  private lastOffset: number | null = null;
  private epoch: string | null = null;
  private buffer: Publication[] = [];

  constructor(
    readonly name: string,
    private readonly report: (error: unknown) => void,
  ) {}

  get position(): StreamPosition | null {
    return this.lastOffset === null || this.epoch === null ? null : { offset: this.lastOffset, epoch: this.epoch };
  }

  setStatus(status: ChannelStatus): void {
    if (status !== "subscribing") this.buffer = [];
    if (this.status === status) return;
    this.status = status;
    if (status !== "failed") this.error = null;
    this.emit((l) => l.onStatus?.(status));
  }

  /** A subscribe frame went out; hold live publications until its reply. */
  beginSubscribe(id: number): void {
    this.subscribeId = id;
    this.buffer = [];
    this.setStatus("subscribing");
  }

  /** A `pub` push for this channel. */
  receive(publication: Publication): void {
    if (this.status === "subscribing") this.buffer.push(publication);
    else if (this.status === "subscribed") this.deliver(publication);
  }

  applySubscribeResult(result: SubscribeResult, since: StreamPosition | undefined): void {
    const resumed = since !== undefined;
    const epochChanged = resumed && since.epoch !== result.epoch;
    const recovered = result.recovered && !epochChanged;
    // Offsets only compare within one epoch; a first subscription takes whatever the reply carries.
    const base = resumed && !epochChanged && this.epoch === result.epoch ? this.lastOffset : null;
    this.lastOffset = base;
    this.epoch = result.epoch;

    const buffered = this.buffer;
    this.buffer = [];
    const context: SubscribedContext = {
      channel: this.name,
      offset: result.offset,
      epoch: result.epoch,
      recovered: resumed ? recovered : true,
      resumed,
    };
    this.lastContext = context;
    this.subscribeId = null;
    this.setStatus("subscribed");
    this.emit((l) => l.onSubscribed?.(context));
    if (resumed && !recovered) {
      const reason: ReloadReason = epochChanged ? "epoch_changed" : "not_recovered";
      this.emit((l) => l.onReload?.(reason, context));
    }
    for (const p of result.publications) this.deliver({ channel: this.name, offset: p.offset, data: p.data });
    if (this.lastOffset === null || result.offset > this.lastOffset) this.lastOffset = result.offset;
    for (const p of buffered) this.deliver(p);
  }

  presence(diff: PresenceDiff): void {
    if (this.status !== "subscribed" && this.status !== "subscribing") return;
    this.emit((l) => l.onPresence?.(diff));
  }

  dropped(info: UnsubscribedInfo): void {
    this.subscribeId = null;
    this.setStatus("unsubscribed");
    this.emit((l) => l.onUnsubscribed?.(info));
  }

  fail(error: HubError): void {
    this.subscribeId = null;
    this.setStatus("failed");
    this.error = error;
    this.emit((l) => l.onError?.(error));
  }

  /** Greet a listener that joins an already running subscription. */
  greet(listener: Listener): void {
    this.call(listener, (l) => l.onStatus?.(this.status));
    if (this.status === "subscribed" && this.lastContext) {
      const context = { ...this.lastContext, offset: this.lastOffset ?? this.lastContext.offset, joined: true };
      this.call(listener, (l) => l.onSubscribed?.(context));
    }
  }

  /** Deliver once per offset, in rising order: anything at or below the last offset is a duplicate. */
  private deliver(publication: Publication): void {
    if (this.lastOffset !== null && publication.offset <= this.lastOffset) return;
    this.lastOffset = publication.offset;
    this.emit((l) => l.onPublication?.(publication as Publication<never>));
  }

  private emit(fn: (listener: Listener) => void): void {
    for (const listener of [...this.listeners]) this.call(listener, fn);
  }

  private call(listener: Listener, fn: (listener: Listener) => void): void {
    try {
      fn(listener);
    } catch (error) {
      this.report(error);
    }
  }
}
