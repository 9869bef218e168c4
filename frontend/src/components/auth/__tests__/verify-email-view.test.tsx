// @vitest-environment jsdom
import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { MyInvitation } from "@/lib/api/invitations";
import { HubError } from "@/lib/errors";
import { INVITATION_TOKEN_KEY } from "@/lib/workspaces/invitation-token";

/**
 * The confirmation page (`/verify-email#token=…`), as the link opens it in a new tab:
 * the tab holds no invitation token, so once the address is confirmed the page asks
 * which invitations wait for it (`invitations.mine`) and says where to answer them.
 */
const auth = { verifyEmail: vi.fn() };
const mine = vi.fn<() => Promise<MyInvitation[]>>();
vi.mock("@/lib/services", () => ({ getServices: () => ({ auth, api: {} }) }));
vi.mock("@/lib/api/invitations", () => ({ myInvitations: () => mine() }));

const { VerifyEmailView, pendingHint } = await import("../verify-email-view");

const invitation = (workspace_name: string, invited_by_name: string | null = "Grace"): MyInvitation => ({
  id: `i-${workspace_name}`,
  workspace_id: `w-${workspace_name}`,
  workspace_name,
  invited_by_name,
  role: "member",
  expires_at: "2026-12-10T00:00:00Z",
});

beforeEach(() => {
  window.history.replaceState(null, "", "/verify-email/#token=abcdefghijklmnopqrstuvwxyz");
  window.sessionStorage.clear();
});
afterEach(() => {
  cleanup();
  vi.clearAllMocks();
});

describe("verify-email page", () => {
  it("confirmed in a tab without the invitation: names the invitation that waits and where to answer it", async () => {
    auth.verifyEmail.mockResolvedValue(undefined);
    mine.mockResolvedValue([invitation("Studio")]);
    render(<VerifyEmailView />);
    expect(await screen.findByRole("heading", { name: "Email confirmed" })).toBeTruthy();
    expect((await screen.findByTestId("pending-invitations")).textContent).toBe("Grace invited you to join “Studio”: accept or decline it on your workspaces page.");
    expect(screen.getByRole("link", { name: "Your workspaces" }).getAttribute("href")).toMatch(/^\/workspaces\/?$/);
    expect(screen.queryByRole("link", { name: "Back to your invitation" })).toBeNull();
    expect(auth.verifyEmail).toHaveBeenCalledWith({ token: "abcdefghijklmnopqrstuvwxyz" });
    expect(window.location.hash).toBe(""); // the token left the address bar
  });

  it("nothing pending, or signed out in this browser (401): no hint, the page as before", async () => {
    auth.verifyEmail.mockResolvedValue(undefined);
    mine.mockRejectedValue(new HubError({ code: "unauthorized", status: 401, message: "no session" }));
    render(<VerifyEmailView />);
    expect(await screen.findByRole("heading", { name: "Email confirmed" })).toBeTruthy();
    await vi.waitFor(() => expect(mine).toHaveBeenCalledTimes(1));
    expect(screen.queryByTestId("pending-invitations")).toBeNull();
  });

  it("the tab that holds the invitation leads back to it, and asks nothing", async () => {
    window.sessionStorage.setItem(INVITATION_TOKEN_KEY, "tok-tok-tok-tok-tok-tok");
    auth.verifyEmail.mockResolvedValue(undefined);
    mine.mockResolvedValue([invitation("Studio")]);
    render(<VerifyEmailView />);
    expect(await screen.findByRole("link", { name: "Back to your invitation" })).toBeTruthy();
    expect(mine).not.toHaveBeenCalled();
    expect(screen.queryByTestId("pending-invitations")).toBeNull();
  });

  it("a link that failed asks nothing", async () => {
    auth.verifyEmail.mockRejectedValue(new HubError({ code: "bad_request", status: 400, message: "bad token" }));
    render(<VerifyEmailView />);
    expect(await screen.findByTestId("verify-error")).toBeTruthy();
    expect(mine).not.toHaveBeenCalled();
  });

  it("several invitations: counted, the first three named", () => {
    expect(pendingHint([invitation("A"), invitation("B", null)])).toBe("You have 2 pending invitations (“A”, “B”): answer them on your workspaces page.");
    expect(pendingHint(["A", "B", "C", "D", "E"].map((n) => invitation(n)))).toBe(
      "You have 5 pending invitations (“A”, “B”, “C” and 2 more): answer them on your workspaces page.",
    );
    expect(pendingHint([invitation("A", null)])).toBe("Someone invited you to join “A”: accept or decline it on your workspaces page.");
  });
});
