import { HubError, isRecord } from "../errors";
import { fullJitter } from "./backoff";
import { ChannelState, type ChannelHandlers, type Subscription } from "./channel";
import { browserEnvironment, browserTimers, sameOriginSocketUrl } from "./environment";
import {
  CloseCode,
  SUBPROTOCOL,
  type ClientCommand,
  type ClientFrame,
  type ConnectResult,
  type ConnectionState,
  type Environment,
  type HistoryResult,
  type HubUser,
  type PresenceInfo,
  type PresenceResult,
  type PublishResult,
  type SocketConstructor,
  type SocketLike,
  type StreamPosition,
  type SubscribeResult,
  type TimerHandle,
  type Timers,
  type TokenProvider,
} from "./types";

export interface RealtimeClientOptions {
  getToken: TokenProvider;
  /** Default: `ws(s)://<page origin>/ws`. */
  url?: string | (() => string);
  WebSocket?: SocketConstructor;
  timers?: Timers;
  /** Uniform [0, 1); drives backoff jitter. */
  random?: () => number;
  /** Idempotency keys. Default: crypto.randomUUID. */
  uuid?: () => string;
  environment?: Environment;
  /** Reply deadline of a read (rpc, presence, history), counted from the call, across reconnects. */
  rpcTimeoutMs?: number;
  /** Reply deadline of a mutation; it is re-sent with the same idempotency key until then. */
  mutationTimeoutMs?: number;
  /** Socket open + `connect` reply deadline. */
  connectTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** A connection that lived this long resets the backoff. */
  stableAfterMs?: number;
  /** How often the liveness timer ticks (each tick reads the wall clock). */
  livenessCheckMs?: number;
  /** Silence allowed on top of two ping intervals before the socket counts as dead. */
  livenessGraceMs?: number;
  /** Used until the hub tells its `ping_interval`. */
  defaultPingIntervalMs?: number;
  /** Delay between the last release and the actual unsubscribe / disconnect (absorbs StrictMode remounts). */
  releaseDelayMs?: number;
  /**
   * The hub's frame size limit in bytes (`HUBBUB_WS_MAX_FRAME_BYTES`, 64 KiB).
   * A call whose frame is larger is refused here with `too_large` instead of
   * being sent (the hub would close the socket with 1009, and the outbox
   * would send it again after the reconnect, forever).
   */
  maxFrameBytes?: number;
  /** Consecutive 4001 closes tolerated (each after a forced token refresh) before giving up. */
  maxAuthRetries?: number;
  logger?: (event: string, detail?: unknown) => void;
  /** A listener threw. Default: console.error. */
  onListenerError?: (error: unknown) => void;
}

/** Why the client stopped trying; `reconnect()` clears it. */
export type HaltReason = "closed" | "forbidden" | "unauthorized" | "signed_out";

export interface ConnectionSnapshot {
  state: ConnectionState;
  clientId: string | null;
  user: HubUser | null;
  lastClose: { code: number; reason: string } | null;
  halted: HaltReason | null;
  /** Wall-clock time of the next reconnect attempt, while waiting for one. */
  nextRetryAt: number | null;
}

export interface CallOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface RpcOptions extends CallOptions {
  /** Give it an idempotency key and re-send it after reconnects. Implied by `idempotencyKey`. */
  mutating?: boolean;
  /** Reuse a key to retry a mutation that may already have been applied. */
  idempotencyKey?: string;
}

interface Inflight {
  onResult(result: unknown): void;
  onError(error: HubError): void;
  timer?: TimerHandle;
}

interface Call {
  command: ClientCommand;
  /** Encoded size of the frame (with the largest possible id). */
  bytes: number;
  /** Re-send after a reconnect if unanswered (rpc, presence, history); publish is not. */
  resend: boolean;
  frameId: number | null;
  deadline: TimerHandle | null;
  settle(error: Error | null, result?: unknown): void;
}

const OPEN = 1;

const DEFAULTS = {
  rpcTimeoutMs: 10_000,
  mutationTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  backoffBaseMs: 500,
  backoffMaxMs: 30_000,
  stableAfterMs: 10_000,
  livenessCheckMs: 5_000,
  livenessGraceMs: 2_000,
  defaultPingIntervalMs: 25_000,
  releaseDelayMs: 0,
  maxAuthRetries: 2,
  maxFrameBytes: 65_536,
};

/**
 * One multiplexed WebSocket to the hub: connection lifecycle, subscriptions
 * with recovery, RPC with an outbox, token refresh and liveness. Framework-free;
 * the React bindings live in `./react`.
 */
export class RealtimeClient {
  private readonly o: typeof DEFAULTS;
  private readonly getToken: TokenProvider;
  private readonly url: () => string;
  private readonly Socket: SocketConstructor | undefined;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly uuid: () => string;
  private readonly env: Environment;
  private readonly log: (event: string, detail?: unknown) => void;
  private readonly reportListenerError: (error: unknown) => void;

  private snapshot: ConnectionSnapshot = {
    state: "offline",
    clientId: null,
    user: null,
    lastClose: null,
    halted: null,
    nextRetryAt: null,
  };
  private readonly stateListeners = new Set<() => void>();

  private retainCount = 0;
  private releaseTimer: TimerHandle | null = null;
  private wanted = false;
  private disposed = false;
  private envOff: (() => void)[] = [];

  private socket: SocketLike | null = null;
  private generation = 0;
  private nextId = 1;
  private live = false;
  private everLive = false;
  private attempt = 0;
  private openedAt = 0;
  private connectedAt = 0;
  private lastInboundAt = 0;
  private pingIntervalMs: number;
  private livenessTimer: TimerHandle | null = null;
  private reconnectTimer: TimerHandle | null = null;
  private reconnectAt: number | null = null;
  private forceRefreshNext = false;
  /** The token last sent in `connect` or `refresh`: what the hub holds for this socket. */
  private lastToken: string | null = null;
  private authRejections = 0;
  private disconnectNotice: { code: number; reason: string; reconnect: boolean | undefined } | null = null;
  private refreshing = false;

  private readonly inflight = new Map<number, Inflight>();
  private readonly calls = new Set<Call>();
  private readonly channels = new Map<string, ChannelState>();

  constructor(options: RealtimeClientOptions) {
    const { getToken, url, WebSocket: Socket, timers, random, uuid, environment, logger, onListenerError, ...rest } =
      options;
    this.o = { ...DEFAULTS, ...stripUndefined(rest) };
    this.getToken = getToken;
    this.url = typeof url === "function" ? url : () => url ?? sameOriginSocketUrl();
    this.Socket = Socket;
    this.timers = timers ?? browserTimers;
    this.random = random ?? Math.random;
    this.uuid = uuid ?? (() => crypto.randomUUID());
    this.env = environment ?? browserEnvironment();
    this.log = logger ?? (() => {});
    this.reportListenerError = onListenerError ?? ((error) => console.error("[realtime] listener failed", error));
    this.pingIntervalMs = this.o.defaultPingIntervalMs;
  }

  // ------------------------------------------------------------ state

  getSnapshot = (): ConnectionSnapshot => this.snapshot;

  get state(): ConnectionState {
    return this.snapshot.state;
  }

  /** Listen to snapshot changes (the shape `useSyncExternalStore` wants). */
  onStateChange = (listener: () => void): (() => void) => {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  };

  private update(patch: Partial<ConnectionSnapshot>): void {
    const next = { ...this.snapshot, ...patch };
    const keys = Object.keys(patch) as (keyof ConnectionSnapshot)[];
    if (keys.every((k) => Object.is(next[k], this.snapshot[k]))) return;
    this.snapshot = next;
    for (const listener of [...this.stateListeners]) {
      try {
        listener();
      } catch (error) {
        this.reportListenerError(error);
      }
    }
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Hold the connection open. The socket opens on the first hold and closes
   * `releaseDelayMs` after the last release, so a StrictMode
   * mount → unmount → mount keeps one socket.
   */
  retain(): () => void {
    if (this.disposed) throw new Error("RealtimeClient is closed");
    this.retainCount += 1;
    if (this.releaseTimer !== null) {
      this.timers.clearTimeout(this.releaseTimer);
      this.releaseTimer = null;
    }
    if (!this.wanted) {
      this.wanted = true;
      this.attachEnvironment();
      this.attempt = 0;
      this.authRejections = 0;
      this.everLive = false;
      this.update({ halted: null });
      void this.openSocket();
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.retainCount -= 1;
      if (this.retainCount > 0 || this.releaseTimer !== null) return;
      this.releaseTimer = this.timers.setTimeout(() => {
        this.releaseTimer = null;
        if (this.retainCount === 0) this.shutdown();
      }, this.o.releaseDelayMs);
    };
  }

  /** Try again now: after a halt (e.g. signed in again), or to skip a backoff wait. */
  reconnect(): void {
    if (!this.wanted || this.disposed) return;
    this.update({ halted: null });
    this.authRejections = 0;
    this.attempt = 0;
    this.forceRefreshNext = false;
    if (this.socket) return;
    void this.openSocket();
  }

  /** Stop for good: close the socket, fail pending calls, forget subscriptions. */
  close(): void {
    this.shutdown();
    this.disposed = true;
    for (const ch of this.channels.values()) this.clearChannelTimers(ch);
    this.channels.clear();
    this.stateListeners.clear();
  }

  private shutdown(): void {
    this.wanted = false;
    this.detachEnvironment();
    this.cancelReconnect();
    if (this.socket) this.abandonSocket(CloseCode.NORMAL, "client stopped");
    this.failAllCalls(HubError.local("unavailable", "The realtime client was stopped"));
    // A halt belongs to the holders that saw it. Once the last one let go, the
    // next holder (typically a new session after a sign-in) must not read it:
    // React runs a child's effects before its provider's retain(), so a stale
    // `halted: "forbidden"` would sign the new session out at once.
    this.update({ state: "offline", halted: null, nextRetryAt: null });
  }

  private halt(reason: HaltReason): void {
    this.cancelReconnect();
    this.failAllCalls(HubError.local("unavailable", `Realtime connection halted: ${reason}`));
    this.update({ state: "offline", halted: reason, nextRetryAt: null });
  }

  private attachEnvironment(): void {
    this.envOff = [
      this.env.on("online", () => this.onOnline()),
      this.env.on("offline", () => this.onOffline()),
      this.env.on("visible", () => this.onVisible()),
    ];
  }

  private detachEnvironment(): void {
    for (const off of this.envOff) off();
    this.envOff = [];
  }

  private onOnline(): void {
    if (!this.wanted || this.snapshot.halted) return;
    if (this.socket) {
      this.checkLiveness();
      return;
    }
    this.attempt = 0;
    void this.openSocket();
  }

  private onOffline(): void {
    if (!this.wanted) return;
    if (this.socket) {
      this.abandonSocket(CloseCode.CLIENT_OFFLINE, "browser offline");
    } else {
      this.cancelReconnect();
      if (!this.snapshot.halted) this.update({ state: "offline", nextRetryAt: null });
    }
  }

  /** Back from a background tab: timers may have been throttled, so judge by the wall clock. */
  private onVisible(): void {
    if (!this.wanted) return;
    this.checkLiveness();
    if (!this.socket && this.reconnectAt !== null && this.timers.now() >= this.reconnectAt) void this.openSocket();
  }

  // ------------------------------------------------------------ socket

  private async openSocket(): Promise<void> {
    this.cancelReconnect();
    if (!this.wanted || this.snapshot.halted || this.socket) return;
    if (!this.env.isOnline()) {
      this.update({ state: "offline" });
      return;
    }
    this.update({ state: this.everLive || this.attempt > 0 ? "reconnecting" : "connecting" });
    const generation = ++this.generation;
    const forceRefresh = this.forceRefreshNext;
    let token: string | null;
    try {
      token = await this.getToken(forceRefresh ? { forceRefresh, rejected: this.lastToken } : { forceRefresh });
    } catch (error) {
      if (generation !== this.generation || !this.wanted || this.socket) return;
      this.log("token_failed", error);
      this.scheduleReconnect();
      return;
    }
    if (generation !== this.generation || !this.wanted || this.socket || this.snapshot.halted) return;
    if (token === null) {
      this.halt("signed_out");
      return;
    }
    this.forceRefreshNext = false;
    const connectToken = token;
    this.lastToken = token;

    const Socket = this.Socket ?? (globalThis.WebSocket as unknown as SocketConstructor | undefined);
    if (!Socket) throw new Error("No WebSocket implementation available");
    let ws: SocketLike;
    try {
      ws = new Socket(this.url(), SUBPROTOCOL);
    } catch (error) {
      this.log("socket_failed", error);
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    this.nextId = 1;
    this.live = false;
    this.disconnectNotice = null;
    this.openedAt = this.timers.now();
    this.lastInboundAt = this.openedAt;

    ws.onopen = () => {
      if (this.socket !== ws) return;
      this.command({ op: "connect", token: connectToken }, {
        onResult: (result) => this.onConnected(ws, result),
        onError: (error) => {
          this.log("connect_refused", error);
          this.abandonSocket(error.code === "unauthorized" ? CloseCode.UNAUTHORIZED : CloseCode.INTERNAL, error.message);
        },
      });
    };
    ws.onmessage = (event) => {
      if (this.socket === ws) this.onData(ws, event.data);
    };
    ws.onclose = (event) => {
      if (this.socket === ws) this.onSocketClosed(event.code, event.reason ?? "");
    };
    ws.onerror = () => this.log("socket_error");
    this.scheduleLivenessTick();
  }

  private onConnected(ws: SocketLike, raw: unknown): void {
    if (this.socket !== ws) return;
    const result = raw as Partial<ConnectResult>;
    const now = this.timers.now();
    this.live = true;
    this.everLive = true;
    this.connectedAt = now;
    this.lastInboundAt = now;
    this.authRejections = 0;
    if (typeof result.ping_interval === "number" && result.ping_interval > 0) {
      this.pingIntervalMs = result.ping_interval * 1000;
    }
    this.update({
      state: "live",
      clientId: typeof result.client === "string" ? result.client : null,
      user: isRecord(result.user) ? (result.user as HubUser) : null,
      nextRetryAt: null,
    });
    for (const ch of this.channels.values()) {
      if (ch.listeners.size > 0 && ch.status === "pending" && ch.retryTimer === null) this.sendSubscribe(ch);
    }
    for (const call of this.calls) {
      if (call.frameId === null) this.sendCall(call);
    }
  }

  /** Drop the socket now, without waiting for a closing handshake that may never come. */
  private abandonSocket(code: number, reason: string): void {
    const ws = this.socket;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code === CloseCode.NORMAL || (code >= 3000 && code <= 4999) ? code : CloseCode.NORMAL, reason.slice(0, 120));
    } catch (error) {
      this.log("close_failed", error);
    }
    this.onSocketClosed(code, reason);
  }

  private onSocketClosed(code: number, reason: string): void {
    const liveFor = this.live ? this.timers.now() - this.connectedAt : 0;
    this.socket = null;
    this.live = false;
    if (this.livenessTimer !== null) {
      this.timers.clearTimeout(this.livenessTimer);
      this.livenessTimer = null;
    }
    for (const entry of this.inflight.values()) if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
    this.inflight.clear();
    const notice = this.disconnectNotice;
    this.disconnectNotice = null;
    const effective = notice?.code ?? code;
    if (effective === CloseCode.MESSAGE_TOO_BIG) {
      // The hub's limit is lower than ours. Its close does not say which frame
      // was too big: the largest unanswered one is the suspect, and sending it
      // again would only repeat the close.
      const sent = [...this.calls].filter((c) => c.frameId !== null).sort((a, b) => b.bytes - a.bytes);
      const suspect = sent[0];
      if (suspect) suspect.settle(tooLarge(suspect.command, suspect.bytes, null));
    }
    for (const call of [...this.calls]) {
      if (call.frameId === null) continue;
      call.frameId = null;
      if (!call.resend) call.settle(HubError.local("unavailable", "The connection closed before the hub answered"));
    }
    for (const ch of this.channels.values()) {
      ch.subscribeId = null;
      if (ch.status === "subscribing" || ch.status === "subscribed") ch.setStatus("pending");
    }

    this.update({ lastClose: { code: effective, reason: notice?.reason || reason }, clientId: null });
    this.log("closed", { code: effective, reason });
    if (!this.wanted) {
      this.update({ state: "offline" });
      return;
    }
    if (liveFor >= this.o.stableAfterMs) this.attempt = 0;

    const terminal =
      notice?.reconnect !== undefined ? !notice.reconnect : effective === CloseCode.NORMAL || effective === CloseCode.FORBIDDEN;
    if (terminal) {
      this.halt(effective === CloseCode.FORBIDDEN ? "forbidden" : "closed");
      return;
    }
    switch (effective) {
      case CloseCode.UNAUTHORIZED:
        this.forceRefreshNext = true;
        this.authRejections += 1;
        if (this.authRejections > this.o.maxAuthRetries) this.halt("unauthorized");
        else this.scheduleReconnect(this.authRejections === 1 ? 0 : undefined);
        return;
      case CloseCode.GOING_AWAY:
        this.scheduleReconnect(this.attempt === 0 ? 0 : undefined);
        return;
      case CloseCode.CLIENT_OFFLINE:
        this.update({ state: "offline", nextRetryAt: null });
        return;
      default:
        this.scheduleReconnect();
    }
  }

  private scheduleReconnect(delayMs?: number): void {
    this.cancelReconnect();
    if (!this.env.isOnline()) {
      this.update({ state: "offline", nextRetryAt: null });
      return;
    }
    const delay = delayMs ?? fullJitter(this.attempt, this.o.backoffBaseMs, this.o.backoffMaxMs, this.random);
    this.attempt += 1;
    this.reconnectAt = this.timers.now() + delay;
    this.update({ state: "reconnecting", nextRetryAt: this.reconnectAt });
    this.log("reconnect_scheduled", { delay, attempt: this.attempt });
    this.reconnectTimer = this.timers.setTimeout(() => {
      this.reconnectTimer = null;
      void this.openSocket();
    }, delay);
  }

  private cancelReconnect(): void {
    if (this.reconnectTimer !== null) this.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.reconnectAt = null;
  }

  // ------------------------------------------------------------ liveness

  private scheduleLivenessTick(): void {
    if (this.livenessTimer !== null) this.timers.clearTimeout(this.livenessTimer);
    this.livenessTimer = this.timers.setTimeout(() => {
      this.livenessTimer = null;
      if (!this.socket) return;
      this.checkLiveness();
      if (this.socket) this.scheduleLivenessTick();
    }, this.o.livenessCheckMs);
  }

  /**
   * Dead when silent too long by the wall clock — never by counting ticks,
   * which a background tab may throttle to one a minute.
   */
  private checkLiveness(): void {
    if (!this.socket) return;
    const now = this.timers.now();
    if (!this.live) {
      if (now - this.openedAt > this.o.connectTimeoutMs) this.abandonSocket(CloseCode.CLIENT_TIMEOUT, "connect timeout");
      return;
    }
    const limit = 2 * this.pingIntervalMs + this.o.livenessGraceMs;
    const silent = now - this.lastInboundAt;
    if (silent > limit) this.abandonSocket(CloseCode.CLIENT_TIMEOUT, `no frame from the hub for ${Math.round(silent / 1000)} s`);
  }

  // ------------------------------------------------------------ inbound

  private onData(ws: SocketLike, data: unknown): void {
    this.lastInboundAt = this.timers.now();
    if (typeof data !== "string") {
      this.log("binary_frame_ignored");
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch (error) {
      this.log("bad_json", error);
      return;
    }
    const frames = Array.isArray(parsed) ? parsed : [parsed];
    for (const frame of frames) {
      if (this.socket !== ws) return;
      this.onFrame(frame);
    }
  }

  private onFrame(frame: unknown): void {
    if (!isRecord(frame)) return;
    if (frame.id === null && isRecord(frame.error)) {
      // The hub could not tell which command this answers (e.g. rate limited before parsing).
      this.log("hub_error", HubError.fromFrame(frame.error));
      return;
    }
    if (typeof frame.id === "number" && ("result" in frame || "error" in frame)) {
      const entry = this.inflight.get(frame.id);
      if (!entry) return;
      this.inflight.delete(frame.id);
      if (entry.timer !== undefined) this.timers.clearTimeout(entry.timer);
      if (frame.error !== undefined && frame.error !== null) entry.onError(HubError.fromFrame(frame.error));
      else entry.onResult(frame.result);
      return;
    }
    const channel = typeof frame.channel === "string" ? this.channels.get(frame.channel) : undefined;
    switch (frame.push) {
      case "ping":
        this.send({ op: "pong" });
        return;
      case "pub":
        if (channel && typeof frame.offset === "number") {
          channel.receive({ channel: channel.name, offset: frame.offset, data: frame.data });
        }
        return;
      case "presence":
        if (channel) channel.presence({ joined: presenceInfos(frame.joined), left: presenceInfos(frame.left) });
        return;
      case "unsubscribed":
        if (channel) {
          this.clearChannelTimers(channel, false);
          channel.dropped({
            code: typeof frame.code === "number" || typeof frame.code === "string" ? frame.code : undefined,
            reason: typeof frame.reason === "string" ? frame.reason : undefined,
          });
        }
        return;
      case "gap":
        if (channel) this.resync(channel);
        return;
      case "expiring":
        void this.refreshToken();
        return;
      case "disconnect":
        this.disconnectNotice = {
          code: typeof frame.code === "number" ? frame.code : CloseCode.ABNORMAL,
          reason: typeof frame.reason === "string" ? frame.reason : "",
          reconnect: typeof frame.reconnect === "boolean" ? frame.reconnect : undefined,
        };
        return;
      default:
        this.log("unknown_frame", frame);
    }
  }

  private async refreshToken(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    const ws = this.socket;
    try {
      const token = await this.getToken({ forceRefresh: true, rejected: this.lastToken });
      if (token === null) {
        if (this.socket) this.abandonSocket(CloseCode.NORMAL, "signed out");
        this.halt("signed_out");
        return;
      }
      if (this.socket !== ws || !this.live) return;
      this.lastToken = token;
      this.command(
        { op: "refresh", token },
        {
          timeoutMs: this.o.rpcTimeoutMs,
          onResult: () => this.log("token_refreshed"),
          onError: (error) => this.log("refresh_refused", error),
        },
      );
    } catch (error) {
      this.log("token_failed", error);
    } finally {
      this.refreshing = false;
    }
  }

  // ------------------------------------------------------------ outbound

  private send(frame: ClientFrame): boolean {
    const ws = this.socket;
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch (error) {
      this.log("send_failed", error);
      return false;
    }
  }

  /** Send a command on the current socket and route its reply. Null when it cannot go out now. */
  private command(command: ClientCommand, entry: Inflight & { timeoutMs?: number }): number | null {
    if (!this.socket || (!this.live && command.op !== "connect")) return null;
    const id = this.nextId++;
    const { timeoutMs, ...handlers } = entry;
    const inflight: Inflight = handlers;
    if (timeoutMs !== undefined) {
      inflight.timer = this.timers.setTimeout(() => {
        if (this.inflight.get(id) !== inflight) return;
        this.inflight.delete(id);
        inflight.onError(HubError.local("timeout", `No reply to ${command.op} within ${timeoutMs} ms`));
      }, timeoutMs);
    }
    this.inflight.set(id, inflight);
    if (!this.send({ id, ...command })) {
      this.inflight.delete(id);
      if (inflight.timer !== undefined) this.timers.clearTimeout(inflight.timer);
      return null;
    }
    return id;
  }

  private enqueue<T>(command: ClientCommand, resend: boolean, options: CallOptions, defaultTimeoutMs: number): Promise<T> {
    if (this.disposed) return Promise.reject(HubError.local("unavailable", "The realtime client is closed"));
    if (this.snapshot.halted) {
      return Promise.reject(HubError.local("unavailable", `Realtime connection halted: ${this.snapshot.halted}`));
    }
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    const bytes = frameBytes({ id: Number.MAX_SAFE_INTEGER, ...command });
    if (bytes > this.o.maxFrameBytes) return Promise.reject(tooLarge(command, bytes, this.o.maxFrameBytes));
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const signal = options.signal;
      const onAbort = () => call.settle(abortReason(signal!));
      const call: Call = {
        command,
        bytes,
        resend,
        frameId: null,
        deadline: null,
        settle: (error, result) => {
          if (!this.calls.delete(call)) return;
          if (call.deadline !== null) this.timers.clearTimeout(call.deadline);
          if (call.frameId !== null) {
            const entry = this.inflight.get(call.frameId);
            if (entry?.timer !== undefined) this.timers.clearTimeout(entry.timer);
            this.inflight.delete(call.frameId);
          }
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(error);
          else resolve(result as T);
        },
      };
      call.deadline = this.timers.setTimeout(() => {
        const key = command.op === "rpc" ? command.idempotency_key : undefined;
        call.settle(
          HubError.local("timeout", `No reply to ${describe(command)} within ${timeoutMs} ms`, key ? { idempotency_key: key } : {}),
        );
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.calls.add(call);
      if (this.live) this.sendCall(call);
    });
  }

  private sendCall(call: Call): void {
    call.frameId = this.command(call.command, {
      onResult: (result) => call.settle(null, result),
      onError: (error) => call.settle(error),
    });
  }

  private failAllCalls(error: HubError): void {
    for (const call of [...this.calls]) call.settle(error);
  }

  /**
   * Call an RPC method. Reads are re-sent after a reconnect until answered
   * or timed out. Mutations (`mutating: true`, or use `mutate`) carry an
   * idempotency key and are re-sent with the same key, so the hub applies them once.
   */
  rpc<T = unknown>(method: string, params: unknown = {}, options: RpcOptions = {}): Promise<T> {
    const mutating = options.mutating ?? options.idempotencyKey !== undefined;
    const key = mutating ? (options.idempotencyKey ?? this.uuid()) : undefined;
    const command: ClientCommand = key
      ? { op: "rpc", method, params, idempotency_key: key }
      : { op: "rpc", method, params };
    return this.enqueue<T>(command, true, options, mutating ? this.o.mutationTimeoutMs : this.o.rpcTimeoutMs);
  }

  mutate<T = unknown>(method: string, params: unknown = {}, options: Omit<RpcOptions, "mutating"> = {}): Promise<T> {
    return this.rpc<T>(method, params, { ...options, mutating: true });
  }

  /** Client publish (only where the channel policy allows). Not re-sent: it has no idempotency key. */
  publish(channel: string, data: unknown, options: CallOptions = {}): Promise<PublishResult> {
    return this.enqueue<PublishResult>({ op: "publish", channel, data }, false, options, this.o.rpcTimeoutMs);
  }

  presence(channel: string, options: CallOptions = {}): Promise<PresenceResult> {
    return this.enqueue<PresenceResult>({ op: "presence", channel }, true, options, this.o.rpcTimeoutMs);
  }

  history(
    channel: string,
    query: { since?: StreamPosition; limit?: number } = {},
    options: CallOptions = {},
  ): Promise<HistoryResult> {
    return this.enqueue<HistoryResult>({ op: "history", channel, ...query }, true, options, this.o.rpcTimeoutMs);
  }

  /** A fresh idempotency key, for callers that want to retry a mutation themselves. */
  newIdempotencyKey(): string {
    return this.uuid();
  }

  // ------------------------------------------------------------ subscriptions

  /**
   * Listen to a channel. Listeners of one channel share one hub subscription
   * (reference counted); it survives reconnects and resumes from the last
   * offset seen. Call `unsubscribe()` on the returned handle when done.
   */
  subscribe<T = unknown>(channel: string, handlers: ChannelHandlers<T> = {}): Subscription {
    if (this.disposed) throw new Error("RealtimeClient is closed");
    let ch = this.channels.get(channel);
    if (!ch) {
      ch = new ChannelState(channel, this.reportListenerError);
      this.channels.set(channel, ch);
    }
    if (ch.releaseTimer !== null) {
      this.timers.clearTimeout(ch.releaseTimer);
      ch.releaseTimer = null;
    }
    const listener = handlers as ChannelHandlers<never>;
    ch.listeners.add(listener);
    ch.greet(listener);
    if (ch.status === "failed" || ch.status === "unsubscribed") ch.setStatus("pending");
    if (ch.status === "pending" && this.live && ch.retryTimer === null) this.sendSubscribe(ch);

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
  get channelNames(): string[] {
    return [...this.channels.values()].filter((ch) => ch.listeners.size > 0).map((ch) => ch.name);
  }

  private removeListener(ch: ChannelState, listener: ChannelHandlers<never>): void {
    ch.listeners.delete(listener);
    if (ch.listeners.size > 0 || ch.releaseTimer !== null) return;
    ch.releaseTimer = this.timers.setTimeout(() => {
      ch.releaseTimer = null;
      if (ch.listeners.size > 0 || this.channels.get(ch.name) !== ch) return;
      this.channels.delete(ch.name);
      this.clearChannelTimers(ch);
      if ((ch.status === "subscribed" || ch.status === "subscribing") && this.live) {
        this.command({ op: "unsubscribe", channel: ch.name }, { onResult: () => {}, onError: () => {} });
      }
    }, this.o.releaseDelayMs);
  }

  private clearChannelTimers(ch: ChannelState, includeRelease = true): void {
    if (ch.retryTimer !== null) this.timers.clearTimeout(ch.retryTimer);
    ch.retryTimer = null;
    if (includeRelease && ch.releaseTimer !== null) {
      this.timers.clearTimeout(ch.releaseTimer);
      ch.releaseTimer = null;
    }
  }

  private sendSubscribe(ch: ChannelState): void {
    const since = ch.position ?? undefined;
    const command: ClientCommand = since
      ? { op: "subscribe", channel: ch.name, since }
      : { op: "subscribe", channel: ch.name };
    const isCurrent = () => this.channels.get(ch.name) === ch && ch.subscribeId === id;
    const id = this.command(command, {
      timeoutMs: this.o.rpcTimeoutMs,
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
    const delay = fullJitter(ch.retryAttempt, this.o.backoffBaseMs, this.o.backoffMaxMs, this.random);
    ch.retryAttempt += 1;
    this.log("subscribe_retry", { channel: ch.name, delay, error });
    ch.retryTimer = this.timers.setTimeout(() => {
      ch.retryTimer = null;
      if (this.live && ch.status === "pending" && ch.listeners.size > 0 && this.channels.get(ch.name) === ch) {
        this.sendSubscribe(ch);
      }
    }, delay);
  }

  /** The hub dropped publications for us (slow consumer): resubscribe from the last offset we saw. */
  private resync(ch: ChannelState): void {
    if (!this.live || (ch.status !== "subscribed" && ch.status !== "subscribing")) return;
    this.command({ op: "unsubscribe", channel: ch.name }, { onResult: () => {}, onError: () => {} });
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

function frameBytes(frame: unknown): number {
  return new TextEncoder().encode(JSON.stringify(frame)).length;
}

function tooLarge(command: ClientCommand, bytes: number, limit: number | null): HubError {
  const key = command.op === "rpc" && command.idempotency_key ? { idempotency_key: command.idempotency_key } : {};
  const message =
    limit === null
      ? `The hub closed the connection: the ${describe(command)} frame (${bytes} bytes) is over its size limit`
      : `The ${describe(command)} frame is ${bytes} bytes; the hub takes at most ${limit}`;
  return HubError.local("too_large", message, { size: bytes, limit, ...key });
}

function describe(command: ClientCommand): string {
  return command.op === "rpc" ? `rpc ${command.method}` : command.op;
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new DOMException("The operation was aborted", "AbortError");
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The well-formed entries of a `presence` push's `joined` or `left` list. */
function presenceInfos(value: unknown): PresenceInfo[] {
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is PresenceInfo => isRecord(v) && typeof v.client === "string");
}
