import { describe, expect, it } from "vitest";
import { HubError, fieldErrorMap, orMade } from "../errors";

describe("HubError", () => {
  it("reads RFC 9457 problem details", () => {
    const error = HubError.fromResponse(409, { type: "about:blank", title: "Conflict", status: 409, detail: "Version is stale" });
    expect(error).toMatchObject({ code: "conflict", status: 409, message: "Version is stale", local: false });
  });

  it("reads a bare {code, message} body", () => {
    expect(HubError.fromResponse(429, { code: "rate_limited", message: "Slow down" })).toMatchObject({
      code: "rate_limited",
      message: "Slow down",
    });
  });

  it("falls back to the status when the body is not JSON", () => {
    expect(HubError.fromResponse(502, "<html>")).toMatchObject({ code: "bad_gateway", status: 502 });
  });

  it("tells retryable failures apart", () => {
    expect(HubError.local("timeout", "t").retryable).toBe(true);
    expect(HubError.fromFrame({ code: "forbidden", message: "no" }).retryable).toBe(false);
  });

  it("tells a change the hub made but could not answer (too_large with details.applied), over the socket and over REST", () => {
    const message = "the change was applied, but its answer (2000000 bytes) is larger than the message bus carries (1048576 bytes)";
    expect(HubError.fromFrame({ code: "too_large", status: 413, message, details: { applied: true, request_id: "q1" } }).applied).toBe(true);
    const problem = { type: "about:blank", title: "Content Too Large", status: 413, code: "too_large", detail: message, details: { applied: true } };
    expect(HubError.fromResponse(413, problem).applied).toBe(true);
    // Too large and not applied: a read's answer (ask for less), or a frame the client would not send.
    expect(HubError.fromFrame({ code: "too_large", status: 413, message: "ask for less" }).applied).toBe(false);
    expect(HubError.local("too_large", "The frame is 70000 bytes").applied).toBe(false);
    expect(HubError.fromFrame({ code: "conflict", status: 409, message: "stale", details: { applied: true } }).applied).toBe(false);
  });

  it("tells an idempotency key the hub applied to another request (422 unprocessable, no field errors), over the socket and over REST", () => {
    const message = "this Idempotency-Key was already used with a different request";
    expect(HubError.fromFrame({ code: "unprocessable", status: 422, message, details: { idempotency_key: "k" } }).keyUsedForOther).toBe(true);
    const problem = { type: "about:blank", title: "Unprocessable Content", status: 422, code: "unprocessable", detail: message, details: { idempotency_key: "k" } };
    expect(HubError.fromResponse(422, problem).keyUsedForOther).toBe(true);
    // A request refused for its fields is not that.
    const invalid = { code: "validation_failed", status: 422, message: "invalid", details: { errors: [{ loc: ["title"], msg: "blank", type: "value_error" }] } };
    expect(HubError.fromFrame(invalid).keyUsedForOther).toBe(false);
    expect(HubError.fromResponse(422, { status: 422, code: "unprocessable", errors: invalid.details.errors }).keyUsedForOther).toBe(false);
    // Nor a 422 that is not the hub's (a proxy's page, a problem without a code).
    expect(HubError.fromResponse(422, "<html>422</html>").keyUsedForOther).toBe(false);
    expect(HubError.fromResponse(422, { status: 422, title: "Unprocessable Entity" }).keyUsedForOther).toBe(false);
  });

  it("survives a malformed error frame", () => {
    expect(HubError.fromFrame("nope")).toMatchObject({ code: "internal" });
  });
});

describe("fieldErrorMap", () => {
  it("keys errors by field path without the body/params prefix, first message wins", () => {
    const error = new HubError({
      code: "validation_failed",
      message: "Invalid",
      details: {
        errors: [
          { loc: ["body", "email"], msg: "first", type: "a" },
          { loc: ["body", "email"], msg: "second", type: "a" },
          { loc: ["tags", 0], msg: "bad tag", type: "b" },
        ],
      },
    });
    expect(fieldErrorMap(error)).toEqual({ email: "first", "tags.0": "bad tag" });
  });
});

describe("errors about one field that are not schema errors", () => {
  it("map details.field to the error's message (409 on a taken email)", () => {
    const error = HubError.fromResponse(409, {
      type: "urn:hubbub:problem:conflict",
      title: "Conflict",
      status: 409,
      detail: "an account with this email already exists",
      code: "conflict",
      details: { field: "email" },
    });
    expect(fieldErrorMap(error)).toEqual({ email: "an account with this email already exists" });
  });

  it("prefer the schema errors when there are both", () => {
    const error = new HubError({
      code: "validation_failed",
      message: "x",
      details: { field: "email", errors: [{ loc: ["password"], msg: "too short", type: "t" }] },
    });
    expect(fieldErrorMap(error)).toEqual({ password: "too short" });
  });
});

describe("orMade", () => {
  const applied = HubError.fromResponse(413, { code: "too_large", status: 413, detail: "applied", details: { applied: true } });
  const tooLarge = HubError.fromResponse(413, { code: "too_large", status: 413, detail: "ask for less" });

  it("answers the write's answer, or what the caller made when the hub made it unanswered", async () => {
    expect(await orMade(Promise.resolve(1), () => 2)).toBe(1);
    expect(await orMade(Promise.reject(applied), () => 2)).toBe(2);
  });

  it("throws any other error as it came, a too_large without applied too", async () => {
    await expect(orMade(Promise.reject(tooLarge), () => 2)).rejects.toBe(tooLarge);
  });
});
