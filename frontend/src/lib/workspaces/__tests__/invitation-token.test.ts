import { describe, expect, it, vi } from "vitest";
import { INVITATION_TOKEN_KEY, captureInvitationToken, forgetInvitationToken, readInvitationToken, storedInvitationToken } from "../invitation-token";

function memory() {
  const data = new Map<string, string>();
  return {
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => void data.set(k, v),
    removeItem: (k: string) => void data.delete(k),
    data,
  };
}

describe("invitation token", () => {
  it("reads #token= first, then ?token=", () => {
    expect(readInvitationToken({ hash: "#token=abc", search: "?token=zzz" })).toBe("abc");
    expect(readInvitationToken({ hash: "", search: "?token=q1" })).toBe("q1");
    expect(readInvitationToken({ hash: "#other=1", search: "" })).toBeNull();
  });

  it("moves the token from the address into storage and drops it from the address bar", () => {
    const store = memory();
    const replaceState = vi.fn();
    const win = { location: { hash: "#token=t-1", search: "", pathname: "/invitations/" }, history: { state: null, replaceState } };
    expect(captureInvitationToken(win as never, store)).toBe("t-1");
    expect(store.data.get(INVITATION_TOKEN_KEY)).toBe("t-1");
    expect(replaceState).toHaveBeenCalledWith(null, "", "/invitations/");
    expect(storedInvitationToken(store)).toBe("t-1");
    forgetInvitationToken(store);
    expect(storedInvitationToken(store)).toBeNull();
  });

  it("leaves the address alone when it has no token", () => {
    const replaceState = vi.fn();
    const win = { location: { hash: "", search: "", pathname: "/invitations/" }, history: { state: null, replaceState } };
    expect(captureInvitationToken(win as never, memory())).toBeNull();
    expect(replaceState).not.toHaveBeenCalled();
  });
});
