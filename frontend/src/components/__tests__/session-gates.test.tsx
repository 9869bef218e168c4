// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState, type ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HubError } from "@/lib/errors";
import type { SessionState } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";

/**
 * The two gates share one page-load check (`useSessionBootstrap`): the refresh
 * cookie is traded for a session, the user read when the reply had none, and
 * a failed check offers *Try again*. What a missing session means is each
 * gate's own: SessionGate sends the page to /login with `next`; the
 * invitation page stays, with a bare header.
 */
const USER: UserPublic = {
  id: "u1",
  email: "ada@example.com",
  display_name: "Ada",
  role: "member",
  is_active: true,
  email_verified: true,
  created_at: "2026-01-01T00:00:00Z",
  last_login_at: null,
};

const listeners = new Set<(state: SessionState) => void>();
const session = {
  state: { authenticated: false, user: null, reason: null } as SessionState,
  getToken: vi.fn<(o: { forceRefresh: boolean }) => Promise<string | null>>(),
  setUser(user: UserPublic) {
    this.state = { authenticated: true, user, reason: null };
    for (const listener of listeners) listener(this.state);
  },
  onChange(listener: (state: SessionState) => void) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
const me = vi.fn(async () => USER);
const replace = vi.fn();

vi.mock("@/lib/services", () => ({ getServices: () => ({ session, auth: { me } }) }));
vi.mock("next/navigation", () => ({ useRouter: () => ({ replace, push: vi.fn() }), usePathname: () => "/" }));
vi.mock("@/components/providers/realtime-root", () => ({ RealtimeRoot: ({ children }: { children: ReactNode }) => <div data-testid="realtime">{children}</div> }));
vi.mock("@/components/app-shell", () => ({ AppShell: ({ children }: { children: ReactNode }) => <div data-testid="shell">{children}</div> }));

const { SessionGate } = await import("../session-gate");
const { InvitationGate } = await import("@/app/invitations/invitation-gate");
const { SessionStoreProvider } = await import("../providers/session-store-provider");

function mount(gate: "app" | "invitation") {
  const Gate = gate === "app" ? SessionGate : InvitationGate;
  return render(
    <SessionStoreProvider>
      <Gate>
        <p>the page</p>
      </Gate>
    </SessionStoreProvider>,
  );
}

beforeEach(() => {
  session.state = { authenticated: false, user: null, reason: null };
  session.getToken.mockReset();
  me.mockClear();
  replace.mockClear();
  window.history.replaceState(null, "", "/workspace/?id=w1");
});
afterEach(cleanup);

describe("SessionGate", () => {
  it("trades the cookie for a session, reads the user, then shows the page", async () => {
    session.getToken.mockResolvedValue("t");
    mount("app");
    expect(screen.getByText("Checking your session…")).toBeTruthy();
    expect(await screen.findByText("the page")).toBeTruthy();
    expect(session.getToken).toHaveBeenCalledWith({ forceRefresh: false });
    expect(me).toHaveBeenCalledTimes(1);
    expect(replace).not.toHaveBeenCalled();
  });

  it("another user signed in: the page starts over for them (its cache and socket holders with it)", async () => {
    session.getToken.mockResolvedValue("t");
    let mounts = 0;
    function Page() {
      const [mount] = useState(() => (mounts += 1));
      return <p>the page, mount {mount}</p>;
    }
    render(
      <SessionStoreProvider>
        <SessionGate>
          <Page />
        </SessionGate>
      </SessionStoreProvider>,
    );
    expect(await screen.findByText("the page, mount 1")).toBeTruthy();
    act(() => {
      // What AuthSession emits when a refresh brings another user's tokens.
      for (const listener of listeners) listener({ authenticated: false, user: null, reason: null });
      session.setUser({ ...USER, id: "u2", display_name: "Bob" });
    });
    expect(await screen.findByText("the page, mount 2")).toBeTruthy();
    expect(replace).not.toHaveBeenCalled();
  });

  it("no session: off to /login with next = this page", async () => {
    session.getToken.mockResolvedValue(null);
    mount("app");
    await vi.waitFor(() => expect(replace).toHaveBeenCalledWith("/login/?next=%2Fworkspace%2F%3Fid%3Dw1"));
    expect(screen.queryByText("the page")).toBeNull();
  });

  it("a check that failed says so; Try again runs it once more", async () => {
    session.getToken.mockRejectedValueOnce(new HubError({ code: "unavailable", message: "The hub cannot be reached." }, { local: true })).mockResolvedValue("t");
    mount("app");
    expect(await screen.findByText("Could not check your session")).toBeTruthy();
    await act(async () => {
      fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    });
    expect(await screen.findByText("the page")).toBeTruthy();
    expect(session.getToken).toHaveBeenCalledTimes(2);
  });
});

describe("InvitationGate", () => {
  it("signed out: stays on the page, under a bare header, and goes nowhere", async () => {
    session.getToken.mockResolvedValue(null);
    mount("invitation");
    expect(await screen.findByText("the page")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Hubbub" }).getAttribute("href")).toMatch(/^\/login\/?$/);
    expect(screen.queryByTestId("shell")).toBeNull();
    expect(replace).not.toHaveBeenCalled();
  });

  it("signed in: the page in the app's shell, with its socket", async () => {
    session.getToken.mockResolvedValue("t");
    mount("invitation");
    expect(await screen.findByText("the page")).toBeTruthy();
    expect(screen.getByTestId("realtime").contains(screen.getByTestId("shell"))).toBe(true);
  });

  it("a check that failed offers Try again, as the app's gate does", async () => {
    session.getToken.mockRejectedValueOnce(new Error("boom")).mockResolvedValue(null);
    mount("invitation");
    expect(await screen.findByText("Could not check your session")).toBeTruthy();
    await act(async () => {
      fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    });
    expect(await screen.findByText("the page")).toBeTruthy();
  });
});
