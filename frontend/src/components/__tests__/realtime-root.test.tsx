// @vitest-environment jsdom
import { StrictMode } from "react";
import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthSession } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";
import { flush, setup } from "@/lib/realtime/__tests__/harness";

/**
 * The app's realtime wiring with a scripted hub: the user's channel becomes
 * toasts and updates the session's user; a socket the hub ended for good
 * ends the session.
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

const h = setup();
const session = new AuthSession({ locks: null, fetch: vi.fn(async () => new Response(null, { status: 401 })) as unknown as typeof fetch });
const me = vi.fn(async () => USER);

vi.mock("@/lib/services", () => ({
  getServices: () => ({ session, realtime: h.client, auth: { me } }),
}));

const { RealtimeRoot } = await import("../providers/realtime-root");
const { SessionStoreProvider, useSessionStore } = await import("../providers/session-store-provider");
const { ToastProvider } = await import("../toaster");

afterEach(cleanup);

function Probe() {
  const status = useSessionStore((s) => s.status);
  const reason = useSessionStore((s) => s.reason);
  const name = useSessionStore((s) => s.user?.display_name ?? "");
  return <span data-testid="session">{`${status}/${reason ?? "-"}/${name}`}</span>;
}

function renderApp() {
  return render(
    <StrictMode>
      <SessionStoreProvider>
        <ToastProvider>
          <Probe />
          <RealtimeRoot>
            <span>app</span>
          </RealtimeRoot>
        </ToastProvider>
      </SessionStoreProvider>
    </StrictMode>,
  );
}

describe("RealtimeRoot", () => {
  it("subscribes to user:<id> once, shows notifications as toasts, and ends the session on a 4003 close", async () => {
    session.accept({ access_token: "t", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: USER });
    renderApp();
    await act(async () => {
      await flush();
    });
    const socket = await act(async () => h.accept());
    const subscribes = socket.framesOf("subscribe");
    expect(subscribes.map((f) => f.channel)).toEqual(["user:u1"]);
    await act(async () => {
      socket.reply(subscribes[0]!.id as number, { channel: "user:u1", offset: 0, epoch: "e", recovered: false, publications: [] });
      socket.push({
        push: "pub",
        channel: "user:u1",
        offset: 1,
        data: { id: "ev1", type: "user.updated", channel: "user:u1", at: "2026-01-01T00:00:00Z", actor: "admin", data: { ...USER, display_name: "Ada Lovelace" } },
      });
      await flush();
    });
    expect(await screen.findByText("Profile updated")).toBeTruthy();
    expect(screen.getByText("An administrator renamed you to Ada Lovelace.")).toBeTruthy();
    expect(screen.getByTestId("session").textContent).toBe("authenticated/-/Ada Lovelace");

    await act(async () => {
      socket.push({ push: "disconnect", code: 4003, reason: "this account was deactivated", reconnect: false });
      socket.drop(4003, "this account was deactivated");
      await flush();
    });
    expect(screen.getByTestId("session").textContent).toBe("anonymous/deactivated/");
  });

  it("after a 4003 sign-out, signing in again stays signed in and goes live (the old halt is not replayed)", async () => {
    // SessionGate's shape: the realtime tree exists only while authenticated.
    function Gate() {
      const status = useSessionStore((s) => s.status);
      return status === "authenticated" ? (
        <RealtimeRoot>
          <span>app</span>
        </RealtimeRoot>
      ) : null;
    }
    session.accept({ access_token: "t1", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: USER });
    render(
      <StrictMode>
        <SessionStoreProvider>
          <ToastProvider>
            <Probe />
            <Gate />
          </ToastProvider>
        </SessionStoreProvider>
      </StrictMode>,
    );
    await act(async () => {
      await flush();
    });
    const first = await act(async () => h.accept());
    await act(async () => {
      first.push({ push: "disconnect", code: 4003, reason: "this account was deactivated", reconnect: false });
      first.drop(4003, "this account was deactivated");
      await flush();
    });
    expect(screen.getByTestId("session").textContent).toBe("anonymous/deactivated/");
    await act(async () => {
      await h.clock.advance(0); // the provider's release runs: the client stops
    });

    // Reactivated; the user signs in again on the same page.
    await act(async () => {
      session.accept({ access_token: "t2", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: USER });
      await flush();
    });
    const second = await act(async () => h.accept());
    await act(async () => {
      await h.clock.advance(0);
    });
    expect(screen.getByTestId("session").textContent).toBe("authenticated/-/Ada");
    expect(second).not.toBe(first);
    expect(h.client.getSnapshot()).toMatchObject({ state: "live", halted: null });
  });
});
