import { describe, expect, it, vi } from "vitest";
import { followSessionUser } from "../services";

vi.mock("../env", () => ({ env: { apiBase: "", wsUrl: "" } }));

/** A session and a socket of which only the users and their change callbacks matter. */
function setup(sessionUser: string | null, socketUser: string | null) {
  const sessionListeners: (() => void)[] = [];
  const socketListeners: (() => void)[] = [];
  const session = { state: { user: sessionUser ? { id: sessionUser } : null }, onChange: (l: () => void) => sessionListeners.push(l) };
  const realtime = {
    snapshot: { user: socketUser ? { id: socketUser } : null },
    getSnapshot() {
      return this.snapshot;
    },
    onStateChange: (l: () => void) => socketListeners.push(l),
    restart: vi.fn(),
  };
  followSessionUser(session, realtime);
  return {
    session,
    realtime,
    sessionChanged: () => sessionListeners.forEach((l) => l()),
    socketChanged: () => socketListeners.forEach((l) => l()),
  };
}

describe("followSessionUser", () => {
  it("starts the socket over when the session becomes another user's", () => {
    const t = setup("alice", "alice");
    t.session.state.user = { id: "bob" };
    t.sessionChanged();
    expect(t.realtime.restart).toHaveBeenCalledTimes(1);
  });

  it("starts it over when its first connect answers for the previous user after the switch", () => {
    const t = setup("bob", null); // signed in as bob while the socket was still connecting
    t.realtime.snapshot = { user: { id: "alice" } }; // its connect went out with alice's token
    t.socketChanged();
    expect(t.realtime.restart).toHaveBeenCalledTimes(1);
  });

  it("starts over once per socket user, and not at all when they agree", () => {
    const t = setup("bob", "alice");
    t.socketChanged();
    t.socketChanged();
    t.sessionChanged();
    expect(t.realtime.restart).toHaveBeenCalledTimes(1);
    t.realtime.snapshot = { user: { id: "bob" } };
    t.socketChanged();
    expect(t.realtime.restart).toHaveBeenCalledTimes(1);
  });

  it("counts a later switch back to a user it once started over for", () => {
    const t = setup("bob", "alice");
    t.socketChanged(); // started over for alice's socket
    t.realtime.snapshot = { user: { id: "bob" } };
    t.socketChanged(); // agree
    t.session.state.user = { id: "alice" };
    t.sessionChanged();
    t.session.state.user = { id: "carol" };
    t.realtime.snapshot = { user: { id: "alice" } };
    t.socketChanged();
    expect(t.realtime.restart).toHaveBeenCalledTimes(3);
  });
});
