import { describe, expect, it } from "vitest";
import { safeNext } from "../forms";

describe("safeNext", () => {
  it.each([
    ["/workspace/?id=1", "/workspace/?id=1"],
    [null, "/workspaces/"],
    ["https://evil.example/", "/workspaces/"],
    ["//evil.example/", "/workspaces/"],
    ["/\\evil.example", "/workspaces/"],
  ])("%s → %s", (input, expected) => {
    expect(safeNext(input)).toBe(expected);
  });
});
