import { describe, expect, it, vi } from "vitest";
import { describeError, retryIn, sentence } from "../error-messages";
import { HubError } from "../errors";
import { applyServerErrors, safeNext } from "../forms";

describe("safeNext", () => {
  it.each([
    ["/workspace/?id=1", "/workspace/?id=1"],
    ["/admin/users/?q=a#top", "/admin/users/?q=a#top"],
    [null, "/workspaces/"],
    ["", "/workspaces/"],
    ["https://evil.example/", "/workspaces/"],
    ["//evil.example/", "/workspaces/"],
    ["/\\evil.example", "/workspaces/"],
    ["/a\\b", "/workspaces/"],
    ["/%2F%2Fevil.example", "/%2F%2Fevil.example"],
    ["/\tevil", "/workspaces/"],
    ["javascript:alert(1)", "/workspaces/"],
    ["workspaces/", "/workspaces/"],
    ["/login/?next=/x", "/workspaces/"],
    // Dot segments resolved by the URL parser must not leave `//host` behind.
    ["/..//evil.example/", "/workspaces/"],
    ["/.//evil.example/", "/workspaces/"],
    ["/%2e%2e//evil.example/", "/workspaces/"],
    ["/%2E//evil.example/", "/workspaces/"],
    ["/a/../..//evil.example/x?y=1", "/workspaces/"],
    ["/..\\evil.example/", "/workspaces/"],
    ["/.\\/evil.example/", "/workspaces/"],
    ["/%2e%2e/\\evil.example/", "/workspaces/"],
    ["/./login/", "/workspaces/"],
    ["/a/../workspace/?id=1", "/workspace/?id=1"],
    ["/%2e%2e/%5Cevil.example", "/%5Cevil.example"],
  ])("%s → %s", (input, expected) => {
    expect(safeNext(input)).toBe(expected);
  });
});

const problem = (status: number, body: Record<string, unknown>, headers?: Record<string, string>) =>
  HubError.fromResponse(status, { status, ...body }, new Headers(headers));

describe("applyServerErrors", () => {
  it("puts 422 validation errors on their fields (register: password policy)", () => {
    const setError = vi.fn();
    const error = problem(422, {
      code: "validation_failed",
      detail: "password: is one of the most common passwords; choose another",
      details: { errors: [{ loc: ["password"], msg: "is one of the most common passwords; choose another", type: "password_policy" }] },
    });
    applyServerErrors(error, setError, ["email", "password", "display_name"]);
    expect(setError.mock.calls).toEqual([["password", { type: "server", message: "Is one of the most common passwords; choose another." }]]);
  });

  it("maps server field names onto form fields (reset: new_password → password)", () => {
    const setError = vi.fn();
    const error = problem(422, {
      code: "validation_failed",
      detail: "x",
      details: { errors: [{ loc: ["new_password"], msg: "String should have at least 10 characters", type: "string_too_short" }] },
    });
    applyServerErrors(error, setError, ["password"], { aliases: { new_password: "password" } });
    expect(setError).toHaveBeenCalledWith("password", { type: "server", message: "String should have at least 10 characters." });
  });

  it("sends errors for fields the form does not have to the form as a whole", () => {
    const setError = vi.fn();
    const error = problem(422, { code: "validation_failed", detail: "x", details: { errors: [{ loc: ["token"], msg: "bad", type: "t" }] } });
    applyServerErrors(error, setError, ["password"]);
    expect(setError).toHaveBeenCalledWith("root.server", { type: "validation_failed", message: "Token: bad." });
  });

  it("lets the form word a 401 itself (login)", () => {
    const setError = vi.fn();
    const error = problem(401, { code: "unauthorized", detail: "wrong email or password" });
    applyServerErrors(error, setError, ["email", "password"], {
      rootMessage: (e) => (e.status === 401 ? "Wrong email or password." : undefined),
    });
    expect(setError).toHaveBeenCalledWith("root.server", { type: "unauthorized", message: "Wrong email or password." });
  });

  it("says when to try again after a 429 (Retry-After)", () => {
    const setError = vi.fn();
    applyServerErrors(problem(429, { code: "rate_limited", detail: "too many requests" }, { "Retry-After": "37" }), setError, ["email"]);
    expect(setError).toHaveBeenCalledWith("root.server", { type: "rate_limited", message: "Too many attempts. Try again in 37 seconds." });
  });
});

describe("messages", () => {
  it("turns the hub's phrases into sentences", () => {
    expect(sentence("wrong email or password")).toBe("Wrong email or password.");
    expect(sentence("Done!")).toBe("Done!");
  });

  it("rounds retry times for people", () => {
    expect(retryIn(1)).toBe("Try again in 1 second.");
    expect(retryIn(0.2)).toBe("Try again in 1 second.");
    expect(retryIn(600)).toBe("Try again in 10 minutes.");
    expect(retryIn(null)).toBe("Try again later.");
  });

  it("names the request id of a server failure", () => {
    expect(describeError(problem(500, { code: "internal", detail: "internal error", request_id: "abc" }))).toBe(
      "Internal error. Try again in a moment. Request id: abc.",
    );
  });
});
