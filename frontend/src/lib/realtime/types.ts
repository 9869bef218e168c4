/**
 * Wire types of the Hubbub WebSocket protocol v1 (`hubbub.v1.json`) as the client uses
 * them, and its seams. The hub's own description is its AsyncAPI document
 * (`/api/v1/asyncapi.json`); the types generated from it are in ./events.d.ts.
 */

import type * as Generated from "./events";
import type { PresenceEntry } from "./events";

export const SUBPROTOCOL = "hubbub.v1.json";

/** What the UI shows. */
export type ConnectionState = "connecting" | "live" | "reconnecting" | "offline";

/** The signed-in user as `connect` answers it (`{id, role}`). */
export type HubUser = Generated.HubUser;

/** `{offset, epoch}`: a position in a channel's history. Offsets rise but skip. */
export type StreamPosition = Generated.Since;

/** A publication as delivered to a channel's listeners. */
export interface Publication<T = unknown> {
  channel: string;
  offset: number;
  data: T;
}

/** Presence entries name the user by id (docs/protocol.md), unlike `connect`'s `{id, role}`. */
export type PresenceInfo = PresenceEntry;

/** A `presence` push: who joined and who left since the last one (one per channel per tick). */
export interface PresenceDiff {
  joined: PresenceInfo[];
  left: PresenceInfo[];
}

export interface PresenceMember extends PresenceInfo {
  /** unix seconds */
  joined_at?: number;
}

// ---------------------------------------------------------------- results and commands

export type ConnectResult = Generated.ConnectResult;
export type PresenceResult = Generated.PresenceResult;
export type HistoryResult = Generated.HistoryResult;
export type PublishResult = Generated.PublishResult;

/**
 * A `subscribe` reply as the client reads it: publications sorted by offset,
 * their `data` whatever JSON the channel carries (the generated
 * `SubscribeResult` types it as an object, which a service's channel need not send).
 */
export interface SubscribeResult extends Omit<Generated.SubscribeResult, "publications"> {
  publications: { offset: number; data: unknown }[];
}

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** A command before it gets its frame id (the generated `ClientCommand` without `id`). */
export type ClientCommand = WithoutId<Generated.ClientCommand>;

export type ClientFrame = (ClientCommand & { id: number }) | { op: "pong" };

// ---------------------------------------------------------------- close codes

export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  /** A frame over the hub's size limit (64 KiB by default). */
  MESSAGE_TOO_BIG: 1009,
  UNAUTHORIZED: 4001,
  FORBIDDEN: 4003,
  POLICY: 4008,
  SLOW_CONSUMER: 4009,
  INTERNAL: 4500,
  /** Client-side: no frame from the hub for too long (or no connect reply). */
  CLIENT_TIMEOUT: 4000,
  /** Client-side: the browser went offline. */
  CLIENT_OFFLINE: 4002,
} as const;

// ---------------------------------------------------------------- seams

/** The subset of the WebSocket API the client uses; inject a fake in tests. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketConstructor = new (url: string, protocols?: string | string[]) => SocketLike;

export type TimerHandle = unknown;

/** Clock and timers; inject a scripted clock in tests. */
export interface Timers {
  /** Wall-clock milliseconds (Date.now), used to judge liveness. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export type EnvironmentEvent = "online" | "offline" | "visible";

/** Network and page-visibility signals (navigator.onLine, document.visibilityState). */
export interface Environment {
  isOnline(): boolean;
  on(event: EnvironmentEvent, listener: () => void): () => void;
}

/**
 * Returns a current access token. `forceRefresh` asks for a new one (the hub
 * said it is expiring or rejected it). Resolve `null` when the user is signed
 * out (the client then stops); reject for a transient failure (it retries).
 * `rejected` is the token the hub refused or is about to expire: a provider
 * that already holds a newer one may return it without another refresh.
 */
export type TokenProvider = (options: { forceRefresh: boolean; rejected?: string | null }) => Promise<string | null>;
