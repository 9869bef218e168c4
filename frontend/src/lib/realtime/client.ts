import { HubError } from "../errors";
import type { ChannelHandlers, Subscription } from "./channel";
import { Channels } from "./channels";
import { Connection } from "./connection";
import { browserEnvironment, browserTimers, sameOriginSocketUrl } from "./environment";
import { DEFAULTS, stripUndefined, type CallOptions, type ConnectionSnapshot, type RealtimeClientOptions, type RpcOptions, type Runtime } from "./options";
import { Outbox } from "./outbox";
import type { RpcMethod, RpcMethodWithoutParams, RpcParams, RpcResult } from "./rpc-types";
import type { ClientCommand, ConnectionState, HistoryResult, PresenceResult, PublishResult, StreamPosition } from "./types";

/** A method name that is not one of the schema's (those go through the typed overloads). */
type Untyped<S extends string> = S extends RpcMethod ? never : S;

export type { CallOptions, ConnectionSnapshot, HaltReason, RealtimeClientOptions, RpcOptions } from "./options";

/**
 * One multiplexed WebSocket to the hub. Framework-free; the React bindings
 * live in `./react`. It puts three parts together:
 *
 * - {@link Connection} (`./connection`): the socket's life — retain/release,
 *   reconnect with backoff by close code, halts, online/offline, liveness by
 *   the wall clock, token refresh, replies routed to their commands;
 * - {@link Outbox} (`./outbox`): rpc, presence, history and publish calls,
 *   queued while not live and re-sent after a reconnect, each with a deadline;
 * - {@link Channels} (`./channels`): subscriptions shared per channel,
 *   resumed from the last offset after a reconnect, with `onReload` when the
 *   hub could not replay what was missed.
 */
/** Stands for the idempotency key a mutation will be given, to size its frame. */
const UUID_SIZED_KEY = "00000000-0000-0000-0000-000000000000";

export class RealtimeClient {
  private readonly uuid: () => string;
  private readonly o: Runtime["o"];
  private readonly connection: Connection;
  private readonly outbox: Outbox;
  private readonly channels: Channels;

  constructor(options: RealtimeClientOptions) {
    const { getToken, url, WebSocket: Socket, timers, random, uuid, environment, logger, onListenerError, ...rest } = options;
    const rt: Runtime = {
      o: { ...DEFAULTS, ...stripUndefined(rest) },
      timers: timers ?? browserTimers,
      random: random ?? Math.random,
      log: logger ?? (() => {}),
      reportListenerError: onListenerError ?? ((error) => console.error("[realtime] listener failed", error)),
    };
    this.o = rt.o;
    this.uuid = uuid ?? (() => crypto.randomUUID());
    this.connection = new Connection(
      rt,
      {
        getToken,
        url: typeof url === "function" ? url : () => url ?? sameOriginSocketUrl(),
        Socket,
        env: environment ?? browserEnvironment(),
      },
      {
        onSignedIn: (userId) => this.outbox.failOtherUsers(userId, HubError.local("unavailable", "Signed in as another user")),
        onLive: () => {
          this.channels.resume();
          this.outbox.flush();
        },
        onSocketClosed: (code) => {
          this.outbox.socketClosed(code);
          this.channels.socketClosed();
        },
        onStopped: (error) => this.outbox.failAll(error),
        onChannelPush: (frame) => this.channels.onPush(frame),
      },
    );
    this.outbox = new Outbox(rt, this.connection);
    this.channels = new Channels(rt, this.connection);
  }

  // ------------------------------------------------------------ connection

  getSnapshot = (): ConnectionSnapshot => this.connection.getSnapshot();

  get state(): ConnectionState {
    return this.connection.getSnapshot().state;
  }

  /** Listen to snapshot changes (the shape `useSyncExternalStore` wants). */
  onStateChange = (listener: () => void): (() => void) => this.connection.onStateChange(listener);

  /**
   * Hold the connection open. The socket opens on the first hold and closes
   * `releaseDelayMs` after the last release, so a StrictMode
   * mount → unmount → mount keeps one socket.
   */
  retain(): () => void {
    return this.connection.retain();
  }

  /** Try again now: after a halt (e.g. signed in again), or to skip a backoff wait. */
  reconnect(): void {
    this.connection.reconnect();
  }

  /**
   * Start over as whoever the session holds now (another user signed in in
   * this tab): calls not answered yet fail, the socket is replaced at once,
   * subscriptions go again on the new one.
   */
  restart(reason = "Signed in as another user"): void {
    this.connection.restart(reason);
  }

  /** Whether {@link close} was called: every call fails, and nothing is tried again. */
  get closed(): boolean {
    return this.connection.isDisposed;
  }

  /** Stop for good: close the socket, fail pending calls, forget subscriptions. */
  close(): void {
    this.connection.close();
    this.channels.clear();
  }

  // ------------------------------------------------------------ calls

  /**
   * Call an RPC method: any REST operation by its name, with its params and
   * result typed from the generated schema (`./rpc-types`):
   * `await client.rpc("resources.get", { workspace_id, resource_id })` is a
   * `ResourcePublic`. Reads are re-sent after a reconnect until answered or
   * timed out. Mutations (`mutating: true`, an `idempotencyKey`, or `mutate`)
   * carry an idempotency key and are re-sent with the same key, so the hub
   * applies them once.
   */
  rpc<M extends RpcMethodWithoutParams>(method: M, params?: RpcParams<M>, options?: RpcOptions): Promise<RpcResult<M>>;
  rpc<M extends RpcMethod>(method: M, params: RpcParams<M>, options?: RpcOptions): Promise<RpcResult<M>>;
  /**
   * A method the schema does not name (a service's own), or a method held in a
   * `string`: untyped. A schema method written out never lands here with the
   * wrong params: they are checked against the schema.
   */
  rpc<T = unknown, S extends string = string>(method: Untyped<S>, params?: Record<string, unknown>, options?: RpcOptions): Promise<T>;
  rpc(method: string, params: Record<string, unknown> = {}, options: RpcOptions = {}): Promise<unknown> {
    const mutating = options.mutating ?? options.idempotencyKey !== undefined;
    const key = mutating ? (options.idempotencyKey ?? this.uuid()) : undefined;
    const command: ClientCommand = key ? { op: "rpc", method, params, idempotency_key: key } : { op: "rpc", method, params };
    return this.enqueue(command, true, options, mutating ? this.o.mutationTimeoutMs : this.o.rpcTimeoutMs);
  }

  /** `rpc` with an idempotency key (a fresh one unless given). */
  mutate<M extends RpcMethod>(method: M, params: RpcParams<M>, options?: Omit<RpcOptions, "mutating">): Promise<RpcResult<M>>;
  /** Untyped, as for `rpc`. */
  mutate<T = unknown, S extends string = string>(method: Untyped<S>, params?: Record<string, unknown>, options?: Omit<RpcOptions, "mutating">): Promise<T>;
  mutate(method: string, params: Record<string, unknown> = {}, options: Omit<RpcOptions, "mutating"> = {}): Promise<unknown> {
    return this.rpc(method, params, { ...options, mutating: true });
  }

  /** Client publish (only where the channel policy allows); `data` is an object. Not re-sent: it has no idempotency key. */
  publish(channel: string, data: Record<string, unknown>, options: CallOptions = {}): Promise<PublishResult> {
    return this.enqueue<PublishResult>({ op: "publish", channel, data }, false, options, this.o.rpcTimeoutMs);
  }

  presence(channel: string, options: CallOptions = {}): Promise<PresenceResult> {
    return this.enqueue<PresenceResult>({ op: "presence", channel }, true, options, this.o.rpcTimeoutMs);
  }

  history(channel: string, query: { since?: StreamPosition; limit?: number } = {}, options: CallOptions = {}): Promise<HistoryResult> {
    return this.enqueue<HistoryResult>({ op: "history", channel, ...query }, true, options, this.o.rpcTimeoutMs);
  }

  /**
   * Whether `mutate(method, params)` fits in one frame: one that does not is
   * refused with `too_large` before it is sent, so it cannot wait in the
   * outbox for the connection to come back. Without `idempotencyKey`, one
   * as long as a UUID is counted.
   */
  fitsFrame(method: string, params: Record<string, unknown> = {}, idempotencyKey?: string): boolean {
    return this.outbox.fits({ op: "rpc", method, params, idempotency_key: idempotencyKey ?? UUID_SIZED_KEY });
  }

  /** A fresh idempotency key, for callers that want to retry a mutation themselves. */
  newIdempotencyKey(): string {
    return this.uuid();
  }

  private enqueue<T>(command: ClientCommand, resend: boolean, options: CallOptions, defaultTimeoutMs: number): Promise<T> {
    if (this.connection.isDisposed) return Promise.reject(HubError.local("unavailable", "The realtime client is closed"));
    const halted = this.connection.getSnapshot().halted;
    if (halted) return Promise.reject(HubError.local("unavailable", `Realtime connection halted: ${halted}`));
    return this.outbox.enqueue<T>(command, resend, options, defaultTimeoutMs);
  }

  // ------------------------------------------------------------ subscriptions

  /**
   * Listen to a channel. Listeners of one channel share one hub subscription
   * (reference counted); it survives reconnects and resumes from the last
   * offset seen. Call `unsubscribe()` on the returned handle when done.
   */
  subscribe<T = unknown>(channel: string, handlers: ChannelHandlers<T> = {}): Subscription {
    if (this.connection.isDisposed) throw new Error("RealtimeClient is closed");
    return this.channels.subscribe(channel, handlers);
  }

  /** Channels with at least one listener. */
  get channelNames(): string[] {
    return this.channels.names;
  }
}
