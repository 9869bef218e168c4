/** Scripted stand-ins for the socket, the clock and the browser, plus a client wired to them. */

import { vi } from "vitest";
import { RealtimeClient, type RealtimeClientOptions } from "../client";
import type { Environment, EnvironmentEvent, SocketLike, Timers } from "../types";

export const HUB_URL = "ws://hub.test/ws";

/** Let pending promise callbacks (getToken, then-chains) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

interface Task {
  at: number;
  seq: number;
  fn: () => void;
}

/** A wall clock and timers that only move when told to. */
export class FakeClock implements Timers {
  time = 1_800_000_000_000;
  private seq = 0;
  private readonly tasks = new Map<number, Task>();

  now = (): number => this.time;

  setTimeout = (fn: () => void, ms: number): number => {
    const seq = ++this.seq;
    this.tasks.set(seq, { at: this.time + Math.max(0, ms), seq, fn });
    return seq;
  };

  clearTimeout = (handle: unknown): void => {
    this.tasks.delete(handle as number);
  };

  /** Move time forward, running due timers in order and settling promises between them. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const next = [...this.tasks.values()]
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.tasks.delete(next.seq);
      this.time = next.at;
      next.fn();
      await flush();
    }
    this.time = end;
    await flush();
  }

  /** Move the wall clock without firing timers: a throttled background tab, a sleeping laptop. */
  jump(ms: number): void {
    this.time += ms;
  }

  /** Delays (from now) of the timers still pending. */
  pendingDelays(): number[] {
    return [...this.tasks.values()].map((t) => t.at - this.time).sort((a, b) => a - b);
  }
}

export class FakeEnvironment implements Environment {
  online = true;
  private readonly listeners = new Map<EnvironmentEvent, Set<() => void>>();

  isOnline = (): boolean => this.online;

  on(event: EnvironmentEvent, listener: () => void): () => void {
    const set = this.listeners.get(event) ?? new Set();
    set.add(listener);
    this.listeners.set(event, set);
    return () => set.delete(listener);
  }

  emit(event: EnvironmentEvent): void {
    if (event === "online") this.online = true;
    if (event === "offline") this.online = false;
    for (const listener of [...(this.listeners.get(event) ?? [])]) listener();
  }

  listenerCount(): number {
    return [...this.listeners.values()].reduce((n, s) => n + s.size, 0);
  }
}

export type Frame = Record<string, unknown> & { id?: number; op?: string };

/** The hub's end of one socket, scripted by the test. */
export class FakeSocket implements SocketLike {
  readyState = 0;
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  readonly sent: string[] = [];
  closedByClient: { code?: number; reason?: string } | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }

  // ---- the hub's side

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  push(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  pushRaw(data: unknown): void {
    this.onmessage?.({ data });
  }

  reply(id: number, result: unknown): void {
    this.push({ id, result });
  }

  fail(id: number, error: { code: string; message?: string; status?: number; details?: Record<string, unknown> }): void {
    this.push({ id, error: { message: error.code, ...error } });
  }

  drop(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }

  get frames(): Frame[] {
    return this.sent.map((s) => JSON.parse(s) as Frame);
  }

  framesOf(op: string): Frame[] {
    return this.frames.filter((f) => f.op === op);
  }

  last(op: string): Frame {
    const found = this.framesOf(op).at(-1);
    if (!found) throw new Error(`no ${op} frame sent; sent: ${this.sent.join(" ")}`);
    return found;
  }
}

export const CONNECT_RESULT = {
  client: "client-1",
  user: { id: "user-1", display_name: "Ada" },
  ping_interval: 25,
  expires_in: 900,
};

export function setup(overrides: Partial<RealtimeClientOptions> = {}) {
  const clock = new FakeClock();
  const env = new FakeEnvironment();
  const sockets: FakeSocket[] = [];
  class Socket extends FakeSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  let tokenCount = 0;
  const getToken = vi.fn(async (_options: { forceRefresh: boolean }): Promise<string | null> => `token-${++tokenCount}`);
  let keyCount = 0;
  const listenerErrors: unknown[] = [];
  const client = new RealtimeClient({
    getToken,
    url: HUB_URL,
    WebSocket: Socket,
    timers: clock,
    random: () => 0.5,
    uuid: () => `key-${++keyCount}`,
    environment: env,
    onListenerError: (error) => listenerErrors.push(error),
    ...overrides,
  });

  const latest = (): FakeSocket => {
    const socket = sockets.at(-1);
    if (!socket) throw new Error("no socket opened yet");
    return socket;
  };

  /** Open the newest socket and answer its connect frame. */
  const accept = async (result: object = CONNECT_RESULT): Promise<FakeSocket> => {
    await flush();
    const socket = latest();
    socket.open();
    const connect = socket.frames[0];
    if (connect?.op !== "connect") throw new Error(`first frame was not connect: ${socket.sent[0]}`);
    socket.reply(connect.id as number, result);
    await flush();
    return socket;
  };

  /** retain() and go live. */
  const start = async (): Promise<FakeSocket> => {
    client.retain();
    return accept();
  };

  /** Let the pending reconnect wait run out (and nothing else). */
  const untilRetry = async (): Promise<void> => {
    const at = client.getSnapshot().nextRetryAt;
    if (at === null) throw new Error("no reconnect scheduled");
    await clock.advance(at - clock.now());
  };

  return { client, clock, env, sockets, getToken, latest, accept, start, untilRetry, listenerErrors };
}
