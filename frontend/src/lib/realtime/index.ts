/**
 * Hubbub realtime client — framework-free core. React bindings: `./react`.
 * `RealtimeClient` (`./client`) puts together the connection (`./connection`),
 * the calls and their outbox (`./outbox`) and the channels (`./channels`,
 * one channel's state in `./channel`); RPC types come from the generated REST
 * operations (`./rpc-types`), wire types from the AsyncAPI document (`./events.d.ts`).
 */
export { RealtimeClient } from "./client";
export type { CallOptions, ConnectionSnapshot, HaltReason, RealtimeClientOptions, RpcOptions } from "./client";
export type { RpcMethod, RpcParams, RpcResult } from "./rpc-types";
export type {
  ChannelHandlers,
  ChannelStatus,
  ReloadReason,
  SubscribedContext,
  Subscription,
  UnsubscribedInfo,
} from "./channel";
export { watchPresence } from "./presence";
export { fullJitter } from "./backoff";
export { browserEnvironment, browserTimers, sameOriginSocketUrl } from "./environment";
export { CloseCode, SUBPROTOCOL } from "./types";
export type {
  ConnectionState,
  ConnectResult,
  Environment,
  EnvironmentEvent,
  HistoryResult,
  HubUser,
  PresenceDiff,
  PresenceInfo,
  PresenceMember,
  PresenceResult,
  Publication,
  PublishResult,
  SocketConstructor,
  SocketLike,
  StreamPosition,
  SubscribeResult,
  Timers,
  TokenProvider,
} from "./types";
export { HubError, fieldErrorMap } from "../errors";
export type { ErrorCode, FieldError } from "../errors";
