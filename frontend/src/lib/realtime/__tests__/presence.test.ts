import { describe, expect, it } from "vitest";
import { watchPresence } from "../presence";
import { flush, setup, type FakeSocket } from "./harness";

const WS = "workspace:9";

type Seen = { clients: string[]; stale: boolean };

type Member = { user: string; client: string; joined_at: number };
type ErrorFrame = Parameters<FakeSocket["fail"]>[1];

/** A snapshot that lists u1's c1 alone. */
const ONLY_C1: Member[] = [{ user: "u1", client: "c1", joined_at: 1 }];
/** The hub cannot give the snapshot now: asked again after its retry_after of 2 s. */
const UNAVAILABLE: ErrorFrame = { code: "unavailable", status: 503, details: { retry_after: 2 } };

/** The hub answers the last presence snapshot asked for on `socket`. */
function answerSnapshot(socket: FakeSocket, members: Member[]): void {
  socket.reply(socket.last("presence").id as number, { members });
}

/** The hub fails the last presence snapshot asked for on `socket`. */
function failSnapshot(socket: FakeSocket, error: ErrorFrame): void {
  socket.fail(socket.last("presence").id as number, error);
}

/** The hub refuses the last subscribe on `socket` for good. */
function refuseSubscribe(socket: FakeSocket): void {
  socket.fail(socket.last("subscribe").id as number, { code: "forbidden", status: 403 });
}

/** Watch WS's presence over the harness's client, on its clock: what was shown last, the
 * errors, and how many times a list was shown. */
function watch(h: ReturnType<typeof setup>) {
  const shown: Seen = { clients: [], stale: false };
  const errors: unknown[] = [];
  let changes = 0;
  watchPresence(
    h.client,
    WS,
    (members, state) => {
      shown.clients = members.map((m) => m.client);
      shown.stale = state.stale;
      changes += 1;
    },
    (error) => errors.push(error),
    { timers: h.clock, random: () => 0.5 },
  );
  return { shown, errors, changes: () => changes };
}

/** `watch` on a connected client, with two members shown fresh. */
async function watching() {
  const h = setup();
  const release = h.client.retain();
  let socket = await h.accept();
  const { shown, errors } = watch(h);
  await flush();
  subscribed(socket, false);
  answerSnapshot(socket, [
    { user: "u1", client: "c1", joined_at: 1 },
    { user: "u2", client: "c2", joined_at: 1 },
  ]);
  await flush();
  expect(shown).toEqual({ clients: ["c1", "c2"], stale: false });

  /** The socket drops; the client reconnects and resubscribes on a new one. */
  const reconnect = async (): Promise<FakeSocket> => {
    socket.drop(1006);
    await h.untilRetry();
    socket = await resubscribed(h);
    return socket;
  };
  return { h, shown, errors, reconnect, release };
}

/** The client's next socket, accepted, its resubscription answered (recovered). */
async function resubscribed(h: ReturnType<typeof setup>): Promise<FakeSocket> {
  const socket = await h.accept();
  subscribed(socket, true);
  await flush();
  return socket;
}

function subscribed(socket: FakeSocket, recovered: boolean): void {
  socket.reply(socket.last("subscribe").id as number, {
    channel: WS,
    offset: 1,
    epoch: "e",
    recovered,
    publications: [],
  });
}

describe("a presence snapshot that fails after a reconnect", () => {
  it("is asked for again after the hub's retry_after (spread over half as long again), and the list is marked stale until then", async () => {
    const { h, shown, errors, reconnect } = await watching();
    const socket = await reconnect(); // u2 closed its tab while we were away
    failSnapshot(socket, UNAVAILABLE);
    await flush();
    expect(shown).toEqual({ clients: ["c1", "c2"], stale: true });
    expect(errors).toHaveLength(1);

    await h.clock.advance(2_499); // retry_after 2 s, and a quarter more at random() 0.5
    expect(socket.framesOf("presence")).toHaveLength(1);
    await h.clock.advance(1);
    expect(socket.framesOf("presence")).toHaveLength(2);
    answerSnapshot(socket, ONLY_C1);
    await flush();
    expect(shown).toEqual({ clients: ["c1"], stale: false });
  });

  it("backs off between attempts that give no retry_after, until one succeeds", async () => {
    const { h, shown, reconnect } = await watching();
    const socket = await reconnect();
    const delays: number[] = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      failSnapshot(socket, {
        code: "timeout",
        status: 504,
      });
      await flush();
      const asked = socket.framesOf("presence").length;
      let waited = 0;
      while (socket.framesOf("presence").length === asked) {
        await h.clock.advance(50);
        waited += 50;
      }
      delays.push(waited);
    }
    expect(delays[1]).toBeGreaterThan(delays[0]!);
    expect(delays[2]).toBeGreaterThan(delays[1]!);
    expect(shown.stale).toBe(true);
    answerSnapshot(socket, []);
    await flush();
    expect(shown).toEqual({ clients: [], stale: false });
  });

  it("applies the diffs that arrive between attempts, and those during the next one on top of it", async () => {
    const { h, shown, reconnect } = await watching();
    const socket = await reconnect();
    failSnapshot(socket, {
      code: "rate_limited",
      status: 429,
      details: { retry_after: 1 },
    });
    await flush();
    socket.push({
      push: "presence",
      channel: WS,
      joined: [{ user: "u3", client: "c3" }],
      left: [],
    });
    await flush();
    expect(shown).toEqual({ clients: ["c1", "c2", "c3"], stale: true });
    await h.clock.advance(1_250); // retry_after 1 s, and a quarter more at random() 0.5
    socket.push({
      push: "presence",
      channel: WS,
      joined: [{ user: "u4", client: "c4" }],
      left: [],
    });
    answerSnapshot(socket, ONLY_C1);
    await flush();
    expect(shown).toEqual({ clients: ["c1", "c4"], stale: false });
  });

  it("is not asked for again when the hub refused it for good", async () => {
    const { h, shown, errors, reconnect } = await watching();
    const socket = await reconnect();
    failSnapshot(socket, {
      code: "bad_request",
      status: 400,
    });
    await flush();
    await h.clock.advance(120_000);
    expect(socket.framesOf("presence")).toHaveLength(1);
    expect(shown.stale).toBe(true);
    expect(errors).toHaveLength(1);
  });

  it("stops asking once the watch is stopped", async () => {
    const h = setup();
    const socket = await h.start();
    const stop = watchPresence(
      h.client,
      WS,
      () => {},
      () => {},
      { timers: h.clock, random: () => 0.5 },
    );
    await flush();
    subscribed(socket, false);
    failSnapshot(socket, {
      code: "unavailable",
      status: 503,
      details: { retry_after: 1 },
    });
    await flush();
    stop();
    await h.clock.advance(60_000);
    expect(socket.framesOf("presence")).toHaveLength(1);
  });

  it("stops asking at once when the client halts, shows the list as stale, and is fresh again after a reconnect", async () => {
    const { h, shown, errors, reconnect } = await watching();
    let socket = await reconnect();
    failSnapshot(socket, UNAVAILABLE);
    await flush();
    expect(errors).toHaveLength(1);

    socket.drop(4003); // membership gone: the client halts
    await flush();
    expect(h.client.getSnapshot().halted).toBe("forbidden");
    expect(shown.stale).toBe(true);
    expect(h.clock.pendingDelays()).toEqual([]); // no retry waits
    await h.clock.advance(600_000);
    expect(errors).toHaveLength(1); // and none was tried

    h.client.reconnect();
    socket = await resubscribed(h);
    answerSnapshot(socket, ONLY_C1);
    await flush();
    expect(shown).toEqual({ clients: ["c1"], stale: false });
  });

  it("does not ask again for a snapshot on its way when the client halted", async () => {
    const { h, shown, errors, reconnect } = await watching();
    const socket = await reconnect();
    // The presence call is on its way when the socket closes for good (1000): it is given up (not an error).
    socket.drop(1000);
    await flush();
    expect(h.client.getSnapshot().halted).toBe("closed");
    expect(shown.stale).toBe(true);
    await h.clock.advance(600_000);
    expect(errors).toEqual([]);
    expect(h.clock.pendingDelays()).toEqual([]);
    expect(socket.framesOf("presence")).toHaveLength(1);
  });
});

describe("a presence list on a closed client", () => {
  it("close() marks a fresh list stale", async () => {
    const { h, shown } = await watching();
    h.client.close();
    await flush();
    expect(shown).toEqual({ clients: ["c1", "c2"], stale: true });
  });

  it("close() ends a retry that waits: nothing is asked again", async () => {
    const { h, shown, errors, reconnect } = await watching();
    const socket = await reconnect();
    failSnapshot(socket, UNAVAILABLE);
    await flush();
    h.client.close();
    await flush();
    expect(shown.stale).toBe(true);
    expect(h.clock.pendingDelays()).toEqual([]);
    await h.clock.advance(600_000);
    expect(errors).toHaveLength(1);
  });
});

describe("the presence list between a socket drop and the resubscription's snapshot", () => {
  it("is stale from the drop (joins and leaves are missed) until the new snapshot", async () => {
    const { h, shown } = await watching();
    h.latest().drop(1006);
    await flush();
    expect(shown).toEqual({ clients: ["c1", "c2"], stale: true });
    await h.untilRetry();
    const socket = await resubscribed(h);
    expect(shown.stale).toBe(true);
    answerSnapshot(socket, ONLY_C1);
    await flush();
    expect(shown).toEqual({ clients: ["c1"], stale: false });
  });

  it("gives up a snapshot on its way at the drop: after the reconnect the resubscription asks once", async () => {
    const { h, shown, errors, reconnect } = await watching();
    await reconnect(); // its snapshot goes out, unanswered
    const socket = await reconnect(); // dropped again with it on its way
    expect(socket.framesOf("presence")).toHaveLength(1);
    answerSnapshot(socket, []);
    await flush();
    expect(shown).toEqual({ clients: [], stale: false });
    expect(errors).toEqual([]);
    await h.clock.advance(60_000);
    expect(socket.framesOf("presence")).toHaveLength(1);
  });
});

describe("a presence list on a client let go", () => {
  it("released (the last holder let go), a retry that waits ends and nothing is asked; retained again, the snapshot comes", async () => {
    const { h, shown, errors, reconnect, release } = await watching();
    let socket = await reconnect();
    failSnapshot(socket, UNAVAILABLE);
    await flush();
    expect(errors).toHaveLength(1);
    release();
    await h.clock.advance(0); // releaseDelayMs
    expect(h.client.getSnapshot()).toMatchObject({ state: "offline", halted: null });
    expect(shown.stale).toBe(true);
    await h.clock.advance(600_000);
    expect(errors).toHaveLength(1);
    expect(h.clock.pendingDelays()).toEqual([]);

    h.client.retain();
    socket = await resubscribed(h);
    expect(socket.framesOf("presence")).toHaveLength(1);
    answerSnapshot(socket, ONLY_C1);
    await flush();
    expect(shown).toEqual({ clients: ["c1"], stale: false });
  });
});

describe("a presence list whose channel the hub refuses for good (status failed)", () => {
  it("a gap's resubscribe refused: the list is stale, the snapshot on its way is given up and no diff is applied any more", async () => {
    const { h, shown, errors } = await watching();
    const socket = h.latest();
    socket.push({ push: "gap", channel: WS });
    await flush();
    refuseSubscribe(socket);
    await flush();
    expect(shown).toEqual({ clients: ["c1", "c2"], stale: true });
    expect(errors).toEqual([]); // the refusal is the subscription's, not a snapshot's
    await h.clock.advance(600_000);
    expect(socket.framesOf("presence")).toHaveLength(1); // the first snapshot only
  });

  it("a gap's resubscribe refused while a snapshot was on its way: its late answer does not make the list fresh", async () => {
    const { h, shown } = await watching();
    const socket = h.latest();
    socket.push({ push: "gap", channel: WS });
    await flush();
    subscribed(socket, true); // the resubscription asks for its snapshot…
    await flush();
    const asked = socket.last("presence").id as number;
    socket.push({ push: "gap", channel: WS }); // …and a second gap's resubscribe is refused before it comes
    await flush();
    refuseSubscribe(socket);
    await flush();
    expect(shown.stale).toBe(true);
    socket.reply(asked, { members: [{ user: "u3", client: "c3", joined_at: 2 }] });
    await flush();
    expect(shown).toEqual({ clients: ["c1", "c2"], stale: true });
  });

  it("the first subscribe refused: the (empty) list is shown stale, never fresh", async () => {
    const h = setup();
    h.client.retain();
    const socket = await h.accept();
    const { shown, changes } = watch(h);
    await flush();
    refuseSubscribe(socket);
    await flush();
    expect(shown).toEqual({ clients: [], stale: true });
    expect(changes()).toBe(1);
    expect(socket.framesOf("presence")).toHaveLength(0);
  });
});
