import { HubError } from "../errors";
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
  settle(error: Error | null, result?: unknown): void;
}

/**
 * Calls (rpc, presence, history, publish) and their outbox. A call made while
 * not live waits here and goes out after the `connect` reply, in call order;
 * one sent but unanswered when the socket dropped is sent again on the next
 * connection (a new frame id; a mutation keeps its idempotency key), except
 * `publish`, which has no key and fails with `unavailable`. Every call has a
 * deadline counted from the call.
 */
export class Outbox {
  private readonly calls = new Set<Call>();

  constructor(
    private readonly rt: Runtime,
    private readonly wire: Wire,
  ) {}

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
        settle: (error, result) => {
          if (!this.calls.delete(call)) return;
          if (call.deadline !== null) timers.clearTimeout(call.deadline);
          if (call.frameId !== null) this.wire.forget(call.frameId);
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(error);
          else resolve(result as T);
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
      if (this.wire.live) this.send(call);
    });
  }

  /** The connection is live: send every call that is not out yet, in call order. */
  flush(): void {
    for (const call of this.calls) {
      if (call.frameId === null) this.send(call);
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

  failAll(error: HubError): void {
    for (const call of [...this.calls]) call.settle(error);
  }

  private send(call: Call): void {
    call.frameId = this.wire.command(call.command, {
      onResult: (result) => call.settle(null, result),
      onError: (error) => call.settle(error),
    });
  }
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
