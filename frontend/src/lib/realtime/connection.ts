import { HubError, isRecord } from "../errors";
import { fullJitter } from "./backoff";
import type { ConnectionSnapshot, HaltReason, Inflight, Runtime, Wire } from "./options";
import {
  CloseCode,
  SUBPROTOCOL,
  type ClientCommand,
  type ClientFrame,
  type ConnectResult,
  type Environment,
  type HubUser,
  type SocketConstructor,
  type SocketLike,
  type TimerHandle,
  type TokenProvider,
} from "./types";

/** What the connection tells the outbox and the channels. */
export interface ConnectionHooks {
  /** `connect` answered as `userId`, before anything goes out: calls made for another user fail. */
  onSignedIn(userId: string): void;
  /** `connect` answered: subscriptions resume, queued calls go out (in that order). */
  onLive(): void;
  /** The socket is gone; `code` is what the hub meant (a `disconnect` push overrides the close code). */
  onSocketClosed(code: number): void;
  /** Halted or released: pending calls fail with `error`. */
  onStopped(error: HubError): void;
  /** A push about a channel; false when it is not one. */
  onChannelPush(frame: Record<string, unknown>): boolean;
}

export interface ConnectionDeps {
  getToken: TokenProvider;
  url: () => string;
  Socket: SocketConstructor | undefined;
  env: Environment;
}

const OPEN = 1;

/**
 * The socket's life: open on the first `retain()`, `connect` with a token,
 * reconnect with full-jitter backoff by close code, halt for good on 1000 /
 * 4003 / repeated 4001 / signed out, follow the browser's online state, judge
 * liveness by the wall clock, answer pings, refresh the token on `expiring`,
 * and route replies to the commands that asked (the {@link Wire} the outbox and
 * the channels send through).
 */
export class Connection implements Wire {
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
  live = false;
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

  constructor(
    private readonly rt: Runtime,
    private readonly deps: ConnectionDeps,
    private readonly hooks: ConnectionHooks,
  ) {
    this.pingIntervalMs = rt.o.defaultPingIntervalMs;
  }

  // ------------------------------------------------------------ state

  getSnapshot = (): ConnectionSnapshot => this.snapshot;

  onStateChange = (listener: () => void): (() => void) => {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  };

  get isDisposed(): boolean {
    return this.disposed;
  }

  get userId(): string | null {
    return this.snapshot.user?.id ?? null;
  }

  private update(patch: Partial<ConnectionSnapshot>): void {
    const next = { ...this.snapshot, ...patch };
    const keys = Object.keys(patch) as (keyof ConnectionSnapshot)[];
    if (keys.every((k) => Object.is(next[k], this.snapshot[k]))) return;
    this.snapshot = next;
    for (const listener of [...this.stateListeners]) {
      try {
        listener();
      } catch (error) {
        this.rt.reportListenerError(error);
      }
    }
  }

  // ------------------------------------------------------------ lifecycle

  retain(): () => void {
    if (this.disposed) throw new Error("RealtimeClient is closed");
    this.retainCount += 1;
    if (this.releaseTimer !== null) {
      this.rt.timers.clearTimeout(this.releaseTimer);
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
      this.releaseTimer = this.rt.timers.setTimeout(() => {
        this.releaseTimer = null;
        if (this.retainCount === 0) this.shutdown();
      }, this.rt.o.releaseDelayMs);
    };
  }

  /**
   * Start over for whoever the session holds now (another user signed in):
   * the calls not answered yet fail (they were made for the previous user),
   * the socket goes, and a new one connects at once with the current token.
   * Calls made from now on belong to whoever it connects as.
   */
  restart(reason: string): void {
    if (!this.wanted || this.disposed) return;
    this.hooks.onStopped(HubError.local("unavailable", reason));
    this.update({ halted: null, user: null });
    this.authRejections = 0;
    this.attempt = 0;
    this.forceRefreshNext = false;
    if (this.socket) this.abandonSocket(CloseCode.GOING_AWAY, reason);
    else void this.openSocket();
  }

  reconnect(): void {
    if (!this.wanted || this.disposed) return;
    this.update({ halted: null });
    this.authRejections = 0;
    this.attempt = 0;
    this.forceRefreshNext = false;
    if (this.socket) return;
    void this.openSocket();
  }

  close(): void {
    // Closed before the shutdown's state change is told: its listeners (presence, React) read the client as
    // closed, for good, not as released for a while.
    this.disposed = true;
    this.shutdown();
    this.stateListeners.clear();
  }

  private shutdown(): void {
    this.wanted = false;
    this.detachEnvironment();
    this.cancelReconnect();
    if (this.socket) this.abandonSocket(CloseCode.NORMAL, "client stopped");
    this.hooks.onStopped(HubError.local("unavailable", "The realtime client was stopped"));
    // A halt belongs to the holders that saw it. Once the last one let go, the
    // next holder (typically a new session after a sign-in) must not read it:
    // React runs a child's effects before its provider's retain(), so a stale
    // `halted: "forbidden"` would sign the new session out at once. The user
    // goes too: the next session's calls belong to whoever it connects as.
    this.update({ state: "offline", halted: null, nextRetryAt: null, user: null });
  }

  private halt(reason: HaltReason): void {
    this.cancelReconnect();
    this.hooks.onStopped(HubError.local("unavailable", `Realtime connection halted: ${reason}`));
    this.update({ state: "offline", halted: reason, nextRetryAt: null });
  }

  private attachEnvironment(): void {
    const { env } = this.deps;
    this.envOff = [env.on("online", () => this.onOnline()), env.on("offline", () => this.onOffline()), env.on("visible", () => this.onVisible())];
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
    if (!this.socket && this.reconnectAt !== null && this.rt.timers.now() >= this.reconnectAt) void this.openSocket();
  }

  // ------------------------------------------------------------ socket

  private async openSocket(): Promise<void> {
    this.cancelReconnect();
    if (!this.wanted || this.snapshot.halted || this.socket) return;
    if (!this.deps.env.isOnline()) {
      this.update({ state: "offline" });
      return;
    }
    this.update({ state: this.everLive || this.attempt > 0 ? "reconnecting" : "connecting" });
    const generation = ++this.generation;
    const forceRefresh = this.forceRefreshNext;
    let token: string | null;
    try {
      token = await this.deps.getToken(forceRefresh ? { forceRefresh, rejected: this.lastToken } : { forceRefresh });
    } catch (error) {
      if (generation !== this.generation || !this.wanted || this.socket) return;
      this.rt.log("token_failed", error);
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

    const Socket = this.deps.Socket ?? (globalThis.WebSocket as unknown as SocketConstructor | undefined);
    if (!Socket) throw new Error("No WebSocket implementation available");
    let ws: SocketLike;
    try {
      ws = new Socket(this.deps.url(), SUBPROTOCOL);
    } catch (error) {
      this.rt.log("socket_failed", error);
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    this.nextId = 1;
    this.live = false;
    this.disconnectNotice = null;
    this.openedAt = this.rt.timers.now();
    this.lastInboundAt = this.openedAt;

    ws.onopen = () => {
      if (this.socket !== ws) return;
      this.command(
        { op: "connect", token: connectToken },
        {
          onResult: (result) => this.onConnected(ws, result),
          onError: (error) => {
            this.rt.log("connect_refused", error);
            this.abandonSocket(error.code === "unauthorized" ? CloseCode.UNAUTHORIZED : CloseCode.INTERNAL, error.message);
          },
        },
      );
    };
    ws.onmessage = (event) => {
      if (this.socket === ws) this.onData(ws, event.data);
    };
    ws.onclose = (event) => {
      if (this.socket === ws) this.onSocketClosed(event.code, event.reason ?? "");
    };
    ws.onerror = () => this.rt.log("socket_error");
    this.scheduleLivenessTick();
  }

  private onConnected(ws: SocketLike, raw: unknown): void {
    if (this.socket !== ws) return;
    const result = raw as Partial<ConnectResult>;
    const user = isRecord(result.user) ? (result.user as HubUser) : null;
    // Calls queued for another user (the token changed hands meanwhile) fail
    // before the connection is live, so none of them goes out as this one.
    if (user) this.hooks.onSignedIn(user.id);
    const now = this.rt.timers.now();
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
      user,
      nextRetryAt: null,
    });
    this.hooks.onLive();
  }

  /** Drop the socket now, without waiting for a closing handshake that may never come. */
  private abandonSocket(code: number, reason: string): void {
    const ws = this.socket;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code === CloseCode.NORMAL || (code >= 3000 && code <= 4999) ? code : CloseCode.NORMAL, reason.slice(0, 120));
    } catch (error) {
      this.rt.log("close_failed", error);
    }
    this.onSocketClosed(code, reason);
  }

  private onSocketClosed(code: number, reason: string): void {
    const liveFor = this.live ? this.rt.timers.now() - this.connectedAt : 0;
    this.socket = null;
    this.live = false;
    if (this.livenessTimer !== null) {
      this.rt.timers.clearTimeout(this.livenessTimer);
      this.livenessTimer = null;
    }
    for (const entry of this.inflight.values()) if (entry.timer !== undefined) this.rt.timers.clearTimeout(entry.timer);
    this.inflight.clear();
    const notice = this.disconnectNotice;
    this.disconnectNotice = null;
    const effective = notice?.code ?? code;
    this.hooks.onSocketClosed(effective);

    this.update({ lastClose: { code: effective, reason: notice?.reason || reason }, clientId: null });
    this.rt.log("closed", { code: effective, reason });
    if (!this.wanted) {
      this.update({ state: "offline" });
      return;
    }
    if (liveFor >= this.rt.o.stableAfterMs) this.attempt = 0;

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
        if (this.authRejections > this.rt.o.maxAuthRetries) this.halt("unauthorized");
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
    if (!this.deps.env.isOnline()) {
      this.update({ state: "offline", nextRetryAt: null });
      return;
    }
    const { o, random, timers } = this.rt;
    const delay = delayMs ?? fullJitter(this.attempt, o.backoffBaseMs, o.backoffMaxMs, random);
    this.attempt += 1;
    this.reconnectAt = timers.now() + delay;
    this.update({ state: "reconnecting", nextRetryAt: this.reconnectAt });
    this.rt.log("reconnect_scheduled", { delay, attempt: this.attempt });
    this.reconnectTimer = timers.setTimeout(() => {
      this.reconnectTimer = null;
      void this.openSocket();
    }, delay);
  }

  private cancelReconnect(): void {
    if (this.reconnectTimer !== null) this.rt.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.reconnectAt = null;
  }

  // ------------------------------------------------------------ liveness

  private scheduleLivenessTick(): void {
    if (this.livenessTimer !== null) this.rt.timers.clearTimeout(this.livenessTimer);
    this.livenessTimer = this.rt.timers.setTimeout(() => {
      this.livenessTimer = null;
      if (!this.socket) return;
      this.checkLiveness();
      if (this.socket) this.scheduleLivenessTick();
    }, this.rt.o.livenessCheckMs);
  }

  /**
   * Dead when silent too long by the wall clock — never by counting ticks,
   * which a background tab may throttle to one a minute.
   */
  private checkLiveness(): void {
    if (!this.socket) return;
    const now = this.rt.timers.now();
    if (!this.live) {
      if (now - this.openedAt > this.rt.o.connectTimeoutMs) this.abandonSocket(CloseCode.CLIENT_TIMEOUT, "connect timeout");
      return;
    }
    const limit = 2 * this.pingIntervalMs + this.rt.o.livenessGraceMs;
    const silent = now - this.lastInboundAt;
    if (silent > limit) this.abandonSocket(CloseCode.CLIENT_TIMEOUT, `no frame from the hub for ${Math.round(silent / 1000)} s`);
  }

  // ------------------------------------------------------------ inbound

  private onData(ws: SocketLike, data: unknown): void {
    this.lastInboundAt = this.rt.timers.now();
    if (typeof data !== "string") {
      this.rt.log("binary_frame_ignored");
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch (error) {
      this.rt.log("bad_json", error);
      return;
    }
    // A batch is handled frame by frame, synchronously: a subscribe reply's
    // replayed publications are delivered before any `pub` that follows it.
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
      this.rt.log("hub_error", HubError.fromFrame(frame.error));
      return;
    }
    if (typeof frame.id === "number" && ("result" in frame || "error" in frame)) {
      const entry = this.inflight.get(frame.id);
      if (!entry) return;
      this.inflight.delete(frame.id);
      if (entry.timer !== undefined) this.rt.timers.clearTimeout(entry.timer);
      if (frame.error !== undefined && frame.error !== null) entry.onError(HubError.fromFrame(frame.error));
      else entry.onResult(frame.result);
      return;
    }
    switch (frame.push) {
      case "ping":
        this.send({ op: "pong" });
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
        if (!this.hooks.onChannelPush(frame)) this.rt.log("unknown_frame", frame);
    }
  }

  /**
   * `expiring`: get a fresh token and send `refresh` on the socket that is
   * live when it comes (the one that asked may have been replaced meanwhile,
   * with the old token). A refused refresh ends the socket: `unauthorized` as
   * a 4001 close does (reconnect with a fresh token); `forbidden` (the token
   * is another user's) as a {@link restart}.
   */
  private async refreshToken(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const token = await this.deps.getToken({ forceRefresh: true, rejected: this.lastToken });
      if (token === null) {
        if (this.socket) this.abandonSocket(CloseCode.NORMAL, "signed out");
        this.halt("signed_out");
        return;
      }
      const ws = this.socket;
      if (!ws || !this.live || token === this.lastToken) return;
      this.command(
        { op: "refresh", token },
        {
          timeoutMs: this.rt.o.rpcTimeoutMs,
          onResult: () => {
            if (this.socket === ws) this.lastToken = token;
            this.rt.log("token_refreshed");
          },
          onError: (error) => {
            this.rt.log("refresh_refused", error);
            if (this.socket !== ws) return;
            if (error.code === "forbidden") this.restart("The new token is another user's");
            else if (error.code === "unauthorized") this.abandonSocket(CloseCode.UNAUTHORIZED, "refresh refused");
          },
        },
      );
    } catch (error) {
      this.rt.log("token_failed", error);
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
      this.rt.log("send_failed", error);
      return false;
    }
  }

  command(command: ClientCommand, entry: Inflight & { timeoutMs?: number }): number | null {
    if (!this.socket || (!this.live && command.op !== "connect")) return null;
    const id = this.nextId++;
    const { timeoutMs, ...handlers } = entry;
    const inflight: Inflight = handlers;
    if (timeoutMs !== undefined) {
      inflight.timer = this.rt.timers.setTimeout(() => {
        if (this.inflight.get(id) !== inflight) return;
        this.inflight.delete(id);
        inflight.onError(HubError.local("timeout", `No reply to ${command.op} within ${timeoutMs} ms`));
      }, timeoutMs);
    }
    this.inflight.set(id, inflight);
    if (!this.send({ id, ...command })) {
      this.inflight.delete(id);
      if (inflight.timer !== undefined) this.rt.timers.clearTimeout(inflight.timer);
      return null;
    }
    return id;
  }

  forget(id: number): void {
    const entry = this.inflight.get(id);
    if (entry?.timer !== undefined) this.rt.timers.clearTimeout(entry.timer);
    this.inflight.delete(id);
  }
}
