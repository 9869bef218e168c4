import type { operations } from "../api/schema";

/**
 * RPC methods, params and results, derived from the generated REST
 * `operations` (`src/lib/api/schema.d.ts`): every REST operation is an RPC
 * method of the same name with the same params — path, query and body fields
 * together — and the same result (docs/protocol.md, *RPC*). The REST `If-Match`
 * header is the `expected_version` param; the `Idempotency-Key` header is the
 * command's `idempotency_key` (`mutate`, or `rpc(…, {idempotencyKey})`).
 *
 * Body fields are optional here: openapi-typescript marks every field that has
 * a default as required, which is true of replies only. The hub validates the
 * params and names a missing one (`validation_failed`, `details.errors[].loc`).
 */
export type RpcMethod = keyof operations;

type Operation<M extends RpcMethod> = operations[M];

/** `{}` for a part the operation does not have (`path?: never`), else the part itself. */
type Part<T> = [NonNullable<T>] extends [never] ? unknown : NonNullable<T>;

type PathParams<O> = O extends { parameters: { path: infer P } } ? Part<P> : unknown;
type QueryParams<O> = O extends { parameters: { query?: infer Q } } ? Partial<Part<Q>> : unknown;
type BodyParams<O> = O extends { requestBody?: infer B }
  ? [NonNullable<B>] extends [never]
    ? unknown
    : NonNullable<B> extends { content: { "application/json": infer J } }
      ? Partial<J>
      : unknown
  : unknown;
type VersionParam<O> = O extends { parameters: { header?: infer H } }
  ? "If-Match" extends keyof NonNullable<H>
    ? { /** The version the change is based on (REST `If-Match`); a newer one on the hub → `conflict`, `details.reason: "stale_version"`. */ expected_version?: number }
    : unknown
  : unknown;

/** The params of RPC method `M`: path, query and body fields in one object (plus `expected_version` where REST takes `If-Match`). */
export type RpcParams<M extends RpcMethod> = PathParams<Operation<M>> & QueryParams<Operation<M>> & BodyParams<Operation<M>> & VersionParam<Operation<M>>;

type JsonOf<R> = R extends { content: { "application/json": infer J } } ? J : void;
type SuccessOf<Responses> = Responses extends { 200: infer R }
  ? JsonOf<R>
  : Responses extends { 201: infer R }
    ? JsonOf<R>
    : Responses extends { 202: infer R }
      ? JsonOf<R>
      : void;

/** What RPC method `M` answers: the REST operation's success body (nothing useful for a 204). */
export type RpcResult<M extends RpcMethod> = SuccessOf<Operation<M>["responses"]>;

/** Methods that take no required param (`rpc("users.me")`). */
export type RpcMethodWithoutParams = { [M in RpcMethod]: object extends RpcParams<M> ? M : never }[RpcMethod];
