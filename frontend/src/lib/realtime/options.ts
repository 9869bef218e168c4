import type { ClientCommand, ConnectionState, Environment, HubUser, SocketConstructor, TimerHandle, Timers, TokenProvider } from "./types";
import type { HubError } from "../errors";

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
  /**
   * Mutations out unanswered at a time, and as many other calls (reads,
   * presence, history, publish), so reads never wait behind slow mutations;
   * the rest wait. Twice it stays below the hub's limit of unanswered rpcs
   * per connection (`HUBBUB_WS_MAX_RPC_IN_FLIGHT`, 64), past which it
   * answers `rate_limited`, with room for calls the client gave up at their
   * deadline that the hub still counts until its own runs out.
   */
  maxCallsInFlight?: number;
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

export const DEFAULTS = {
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
  maxCallsInFlight: 24,
};

export type Settings = typeof DEFAULTS;

/** What the connection, the outbox and the channels share. */
export interface Runtime {
  readonly o: Settings;
  readonly timers: Timers;
  readonly random: () => number;
  readonly log: (event: string, detail?: unknown) => void;
  readonly reportListenerError: (error: unknown) => void;
}

/** A command waiting for its reply on the current socket. */
export interface Inflight {
  onResult(result: unknown): void;
  onError(error: HubError): void;
  timer?: TimerHandle;
}

/** What the outbox and the channels may do with the connection. */
export interface Wire {
  /** `connect` answered on the current socket: commands may go out. */
  readonly live: boolean;
  /** The user the current session's last `connect` reply named; null before it, and after a stop or a restart. */
  readonly userId: string | null;
  /** Send a command on the current socket and route its reply. Null when it cannot go out now. */
  command(command: ClientCommand, entry: Inflight & { timeoutMs?: number }): number | null;
  /** Stop waiting for the reply to frame `id` (its caller gave up). */
  forget(id: number): void;
}

export function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
