import { HubError } from "../errors";
import { fullJitter } from "./backoff";
import { CloseCode, type ClientCommand, type TimerHandle } from "./types";
import type { CallOptions, Runtime, Wire } from "./options";

interface Call {
  command: ClientCommand;
  /** Encoded size of the frame (with the largest possible id). */
  bytes: number;
  /** Re-send after a reconnect if unanswered (rpc, presence, history); publish is not. */
  resend: boolean;
  frameId: number | null;
  deadline: TimerHandle | null;
  /** Refused for a while (see {@link RETRIED}): waiting to go out again. */
  retryTimer: TimerHandle | null;
  /** What it waits for (see {@link waitsFor}): the connection, or the hub (holds back every later mutation); or its target's busy worker (the same target's). */
  waitsFor: "connection" | "target";
  /** What a mutation changes, for its order (see {@link orderKey}). */
  target: string;
  retries: number;
  /** The user the connection was signed in as when the call was made; null before the session's first `connect` reply. */
  user: string | null;
  /** Answer the caller and leave the outbox, making room for the next call. */
  settle(error: Error | null, result?: unknown): void;
  /** Answer the caller and leave the outbox, sending nothing else (false if it had left already). */
  finish(error: Error | null, result?: unknown): boolean;
}

/**
 * Calls (rpc, presence, history, publish) and their outbox. A call made while
 * not live waits here and goes out after the `connect` reply, in call order;
 * one sent but unanswered when the socket dropped is sent again on the next
 * connection (a new frame id; a mutation keeps its idempotency key), except
 * `publish`, which has no key and fails with `unavailable`. Every call has a
 * deadline counted from the call.
 *
 * At most `maxCallsInFlight` mutations are out unanswered at a time, and as
 * many other calls (reads, presence, history, publish), so a read never waits
 * behind slow mutations; together they stay below the hub's limit of
 * unanswered rpcs, 64 per connection, past which it answers `rate_limited`
 * (with room for calls given up here that the hub still counts).
 * The rest wait their turn. A mutation the hub refuses for a while
 * (`rate_limited`, `unavailable`, `timeout`) goes out again with the same
 * idempotency key after `retry_after` (for `unavailable` and `timeout`, plus
 * a jittered backoff step that grows with each refusal, so that clients
 * refused together by an outage do not all come back at once), until its
 * deadline. Meanwhile it holds back every later mutation — the refusal is
 * the connection's (`rate_limited`: commands per second, unanswered rpcs) or
 * the hub's (no worker answering, the bus or the database down: sending more
 * would only be refused too) — except when it says the work never started on
 * a busy worker (`unavailable` with `details.reason: "busy"`, a full mailbox
 * of the actor its resource is keyed by): then only the later mutations of
 * the same target (see {@link orderKey}: the same resource, or for a create
 * the same workspace) wait, so they are sent in call order (an update carries
 * `expected_version`: one applied out of order is a conflict, not lost work);
 * the others go, and if they are refused too, each waits for its own retry.
 * A refusal that is final settles its call alone.
 *
 * A call belongs to the user the connection was signed in as when it was
 * made: once `connect` answers as someone else, it fails instead of going out.
 */
export class Outbox {
  private readonly calls = new Set<Call>();

  constructor(
    private readonly rt: Runtime,
    private readonly wire: Wire,
  ) {}

  /** Whether `command` fits in one frame (one that does not is refused by {@link enqueue} with `too_large`). */
  fits(command: ClientCommand): boolean {
    return frameBytes({ id: Number.MAX_SAFE_INTEGER, ...command }) <= this.rt.o.maxFrameBytes;
  }

  /** Queue `command`; it goes out now if live, else after the next `connect` reply. */
  enqueue<T>(command: ClientCommand, resend: boolean, options: CallOptions, defaultTimeoutMs: number): Promise<T> {
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    const bytes = frameBytes({ id: Number.MAX_SAFE_INTEGER, ...command });
    if (bytes > this.rt.o.maxFrameBytes) return Promise.reject(tooLarge(command, bytes, this.rt.o.maxFrameBytes));
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const { timers } = this.rt;
    return new Promise<T>((resolve, reject) => {
      const signal = options.signal;
      const onAbort = () => call.settle(abortReason(signal!));
      const call: Call = {
        command,
        bytes,
        resend,
        frameId: null,
        deadline: null,
        retryTimer: null,
        waitsFor: "target",
        target: orderKey(command),
        retries: 0,
        user: this.wire.userId,
        settle: (error, result) => {
          if (call.finish(error, result)) this.flush(); // its place in flight is free
        },
        finish: (error, result) => {
          if (!this.calls.delete(call)) return false;
          if (call.deadline !== null) timers.clearTimeout(call.deadline);
          if (call.retryTimer !== null) timers.clearTimeout(call.retryTimer);
          if (call.frameId !== null) this.wire.forget(call.frameId);
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(error);
          else resolve(result as T);
          return true;
        },
      };
      call.deadline = timers.setTimeout(() => {
        const key = command.op === "rpc" ? command.idempotency_key : undefined;
        call.settle(
          HubError.local("timeout", `No reply to ${describe(command)} within ${timeoutMs} ms`, key ? { idempotency_key: key } : {}),
        );
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.calls.add(call);
      this.flush();
    });
  }

  /**
   * Send the calls that wait, in call order, as far as the places in flight
   * allow: mutations and the other calls each have `maxCallsInFlight`. A
   * mutation that waits for a place, or for its retry after a refusal of the
   * connection or the hub, holds back every mutation after it; one that waits
   * for its retry after `busy`, those after it of the same target. Called when the
   * connection is live and whenever a call leaves the flight or its retry is due.
   */
  flush(): void {
    if (!this.wire.live) return;
    const limit = this.rt.o.maxCallsInFlight;
    let mutations = 0;
    let others = 0;
    for (const call of this.calls) {
      if (call.frameId === null) continue;
      if (isMutation(call.command)) mutations += 1;
      else others += 1;
    }
    let mutationsHeld = false;
    const targetsHeld = new Set<string>();
    for (const call of this.calls) {
      if (call.frameId !== null) continue;
      const mutation = isMutation(call.command);
      if (mutation) {
        if (mutationsHeld || targetsHeld.has(call.target)) continue;
        if (mutations >= limit || (call.retryTimer !== null && call.waitsFor === "connection")) {
          mutationsHeld = true;
          continue;
        }
        if (call.retryTimer !== null) {
          targetsHeld.add(call.target);
          continue;
        }
      } else if (others >= limit) {
        if (mutationsHeld) return;
        continue;
      }
      this.send(call);
      if (call.frameId === null) return; // the socket is gone
      if (mutation) mutations += 1;
      else others += 1;
    }
  }

  /**
   * The socket closed (`code` as the hub meant it). Unanswered calls wait for
   * the next connection, but `publish`. After a 1009 (a frame over the hub's
   * limit, which is lower than ours) the largest unanswered call fails with
   * `too_large`: sending it again would only repeat the close.
   */
  socketClosed(code: number): void {
    if (code === CloseCode.MESSAGE_TOO_BIG) {
      const sent = [...this.calls].filter((c) => c.frameId !== null).sort((a, b) => b.bytes - a.bytes);
      const suspect = sent[0];
      if (suspect) suspect.settle(tooLarge(suspect.command, suspect.bytes, null));
    }
    for (const call of [...this.calls]) {
      if (call.frameId === null) continue;
      call.frameId = null;
      if (!call.resend) call.settle(HubError.local("unavailable", "The connection closed before the hub answered"));
    }
  }

  /** Fail every call, sending none of those that wait (they were made for a session that ended). */
  failAll(error: HubError): void {
    for (const call of [...this.calls]) call.finish(error);
  }

  /** `connect` answered as `user`: the calls made for another user fail, before any goes out. */
  failOtherUsers(user: string, error: HubError): void {
    for (const call of [...this.calls]) if (call.user !== null && call.user !== user) call.finish(error);
  }

  private send(call: Call): void {
    call.frameId = this.wire.command(call.command, {
      onResult: (result) => call.settle(null, result),
      onError: (error) => this.refused(call, error),
    });
  }

  /** The hub refused `call`: final, or (a mutation, refused for a while) sent again later with the same key. */
  private refused(call: Call, error: HubError): void {
    if (!(isMutation(call.command) && RETRIED.has(error.code))) {
      call.settle(error);
      return;
    }
    const { o, random, timers } = this.rt;
    const backoff = fullJitter(call.retries, o.backoffBaseMs, o.backoffMaxMs, random);
    const retryAfter = error.retryAfter !== null ? error.retryAfter * 1000 : null;
    // The connection's rate limit ends when the hub says; an outage or a busy worker, not before it says either.
    const delay = error.code === "rate_limited" ? (retryAfter ?? backoff) : (retryAfter ?? 0) + backoff;
    call.retries += 1;
    call.frameId = null;
    call.waitsFor = waitsFor(error);
    this.rt.log("call_retry", { call: describe(call.command), delay, error });
    call.retryTimer = timers.setTimeout(() => {
      call.retryTimer = null;
      this.flush();
    }, delay);
    this.flush();
  }
}

/**
 * Refusals that pass by themselves: over the hub's command rate or its limit
 * of unanswered rpcs, no worker or a full mailbox, a worker too slow. A
 * mutation carries its idempotency key, so sending it again cannot apply it twice.
 */
const RETRIED: ReadonlySet<string> = new Set(["rate_limited", "unavailable", "timeout"]);

/**
 * What a mutation changes, as far as its order goes: the resource it names
 * (`resource_id`: an update, delete or restore of it), else its workspace
 * (`workspace_id`: a create — cards added to a column land in the order they
 * were added — or a change of the workspace or its members), else nothing in
 * particular (all those share one key).
 */
function orderKey(command: ClientCommand): string {
  if (command.op !== "rpc") return "";
  const { resource_id: resource, workspace_id: workspace } = command.params as { resource_id?: unknown; workspace_id?: unknown };
  if (typeof resource === "string") return `resource:${resource}`;
  if (typeof workspace === "string") return `workspace:${workspace}`;
  return "";
}

/**
 * What a mutation refused for a while waits for: its target (`target`) when
 * the hub says the work never started on a busy worker (`details.reason:
 * "busy"`, the hub's bus sends such a refusal on to another worker before it
 * answers it); anything else (`rate_limited`; `unavailable` without that
 * reason: no worker, the bus or the database down; `timeout`) is not about
 * one target and holds back the connection's mutations (`connection`).
 */
function waitsFor(error: HubError): Call["waitsFor"] {
  return error.code === "unavailable" && error.details.reason === BUSY ? "target" : "connection";
}

/** `details.reason` of an `unavailable` refusal of work that never started on a busy worker (hubbub/contracts/errors.py, NOT_STARTED). */
const BUSY = "busy";

/** An rpc with an idempotency key: the hub applies it once, however often it is sent. */
function isMutation(command: ClientCommand): boolean {
  return command.op === "rpc" && Boolean(command.idempotency_key);
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
