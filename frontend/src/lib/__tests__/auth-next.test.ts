import { describe, expect, it } from "vitest";
import { INVITATION_PAGE, nextParam, withNext } from "../auth-next";
import { safeNext } from "../forms";

describe("nextParam: only same-site paths survive", () => {
  it.each([
    ["/invitations/", "/invitations/"],
    ["/workspace/?id=1&x=2", "/workspace/?id=1&x=2"],
    [null, null],
    [undefined, null],
    ["", null],
    ["https://evil.example/invitations/", null],
    ["//evil.example/", null],
    ["///evil.example/", null],
    ["/\\evil.example", null],
    ["\\\\evil.example", null],
    ["/\tevil", null],
    ["/\nevil", null],
    ["javascript:alert(1)", null],
    ["data:text/html,hi", null],
    ["invitations/", null],
    [" /invitations/", null],
    ["/login/?next=//evil.example", null],
    ["/register/", null],
    ["/" + "a".repeat(2001), null],
  ])("%j → %j", (input, expected) => {
    expect(nextParam(input)).toBe(expected);
  });

  it("a same-site path keeps only its path, query and fragment", () => {
    expect(nextParam("/a/../invitations/?x=1#t")).toBe("/invitations/?x=1#t");
  });
});

describe("withNext: links that keep where the visitor was going", () => {
  it("adds an encoded next to the link", () => {
    expect(withNext("/register/", INVITATION_PAGE)).toBe("/register/?next=%2Finvitations%2F");
    expect(withNext("/login/", "/workspace/?id=1&x=2")).toBe("/login/?next=%2Fworkspace%2F%3Fid%3D1%26x%3D2");
  });

  it("drops an unsafe or missing next instead of passing it on", () => {
    expect(withNext("/register/", "https://evil.example/")).toBe("/register/");
    expect(withNext("/register/", "//evil.example")).toBe("/register/");
    expect(withNext("/login/", null)).toBe("/login/");
  });

  it("a next passed through a link and read back is the same path, and still safe", () => {
    const link = new URL(withNext("/register/", "/invitations/?a=1&b=2"), "http://hubbub.test");
    expect(safeNext(link.searchParams.get("next"))).toBe("/invitations/?a=1&b=2");
  });
});
