import { describe, expect, it } from "vitest";
import { readResetToken } from "@/components/auth/reset-password-form";
import { isSignOutReason, loginUrl } from "../sign-out-reasons";

describe("loginUrl", () => {
  it("comes back to the page after an expired or revoked session", () => {
    expect(loginUrl("expired", "/profile/")).toBe("/login/?next=%2Fprofile%2F&reason=expired");
    expect(loginUrl(null, "/admin/users/?q=a")).toBe("/login/?next=%2Fadmin%2Fusers%2F%3Fq%3Da");
  });

  it("does not after a sign-out or a deactivation", () => {
    expect(loginUrl("logout", "/profile/")).toBe("/login/?reason=logout");
    expect(loginUrl("deactivated", "/profile/")).toBe("/login/?reason=deactivated");
  });

  it("knows its reasons", () => {
    expect(isSignOutReason("expired")).toBe(true);
    expect(isSignOutReason("toString")).toBe(false);
    expect(isSignOutReason(null)).toBe(false);
  });
});

describe("readResetToken", () => {
  it("reads the token from the fragment (the mailed link)", () => {
    expect(readResetToken({ hash: "#token=G-Fb_JA3", search: "" })).toBe("G-Fb_JA3");
  });

  it("accepts ?token= too, and nothing else", () => {
    expect(readResetToken({ hash: "", search: "?token=abc" })).toBe("abc");
    expect(readResetToken({ hash: "#other=1", search: "" })).toBeNull();
    expect(readResetToken({ hash: "#token=", search: "" })).toBeNull();
  });
});
