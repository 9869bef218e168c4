// @vitest-environment jsdom
import { act, cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import { AuthSession } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";
import { resourceKeys } from "@/lib/queries/keys";
import { flush, setup } from "@/lib/realtime/__tests__/harness";
import { openLivePage } from "./live-page";

/**
 * The card's page against a fake REST hub (the reads) and a scripted realtime hub (the
 * channel, and changes as RPCs): what it offers depends on the caller's role.
 */
const ME: UserPublic = { id: "u1", email: "a@example.com", display_name: "Ada", role: "member", is_active: true, email_verified: true, created_at: "x", last_login_at: null };
const CARD = {
  id: "r1",
  workspace_id: "w1",
  kind: "task",
  title: "Write the spec",
  body: "All of it.",
  status: "open",
  position: "a0",
  tags: [],
  data: {},
  version: 1,
  created_by: "u1",
  updated_by: "u1",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  deleted_at: null,
};

let role = "member";
/** `GET /workspaces/w1` fails (a 500) while set. */
let workspaceDown = false;
const fetchImpl = vi.fn(async (url: string | URL | Request, init?: RequestInit) => {
  const key = `${init?.method ?? "GET"} ${String(url)}`;
  if (key === "GET /api/v1/workspaces/w1/resources/r1?include_deleted=true") return new Response(JSON.stringify(CARD), { status: 200 });
  if (key === "GET /api/v1/workspaces/w1" && workspaceDown) return new Response(JSON.stringify({ code: "internal", status: 500, message: "boom" }), { status: 500 });
  if (key === "GET /api/v1/workspaces/w1") {
    return new Response(JSON.stringify({ id: "w1", name: "Team", role, version: 1, created_by: "u1", created_at: "x", updated_at: "x" }), { status: 200 });
  }
  return new Response(JSON.stringify({ code: "not_found", status: 404, message: key }), { status: 404 });
});

let h = setup();
const session = new AuthSession({ locks: null, fetch: vi.fn(async () => new Response(null, { status: 401 })) as unknown as typeof fetch });
const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch, tokens: { getToken: async () => "t" } });

vi.mock("@/lib/services", () => ({ getServices: () => ({ session, api, realtime: h.client }) }));
vi.mock("next/navigation", () => ({
  useSearchParams: () => new URLSearchParams("ws=w1&id=r1"),
  usePathname: () => "/workspace/resource/",
  useRouter: () => ({ push: vi.fn(), replace: vi.fn() }),
}));

const { ResourceDetail } = await import("@/app/(app)/workspace/resource/resource-detail");

beforeEach(() => {
  h = setup();
  role = "member";
  workspaceDown = false;
});
afterEach(cleanup);

/** Render the page, let its subscription stand, and wait for the card and the caller's role. */
async function mount() {
  return (await mountWithCache()).socket;
}

/** {@link mount}, with the page's query cache. */
async function mountWithCache() {
  const { socket, queries } = await openLivePage(<ResourceDetail />, { session, h, user: ME });
  await screen.findByText("All of it.");
  await waitFor(() => expect(queries.isFetching()).toBe(0));
  return { socket, queries };
}

/** The page's last RPC, once it is `method`. */
async function lastRpc(socket: Awaited<ReturnType<typeof mount>>, method: string) {
  await waitFor(() => expect(socket.last("rpc").method).toBe(method));
  return socket.last("rpc");
}

const offered = () => ["Edit", "Delete", "Restore"].filter((name) => screen.queryByRole("button", { name }) !== null);

describe("card page, by role", () => {
  it("a viewer reads the card but is offered no Edit or Delete", async () => {
    role = "viewer";
    await mount();
    expect(offered()).toEqual([]);
  });

  it("a member is offered Edit and Delete", async () => {
    await mount();
    expect(offered()).toEqual(["Edit", "Delete"]);
  });
});

describe("card page, delete", () => {
  it("a delete the hub took is reported as done even if the read after it fails", async () => {
    const socket = await mount();
    fireEvent.click(screen.getByRole("button", { name: "Delete" }));
    fireEvent.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Delete" }));

    const rpc = async (method: string) => {
      await waitFor(() => expect(socket.last("rpc").method).toBe(method));
      return socket.last("rpc");
    };
    const deleted = await rpc("resources.delete");
    expect(deleted.params).toMatchObject({ workspace_id: "w1", resource_id: "r1", expected_version: 1 });
    await act(async () => {
      socket.reply(deleted.id!, null);
      await flush();
    });
    const read = await rpc("resources.get");
    await act(async () => {
      socket.fail(read.id!, { code: "unavailable", status: 503, message: "the hub is restarting" });
      await flush();
    });

    expect(await screen.findByText("Card deleted")).toBeTruthy();
    expect(screen.queryByText("Not deleted")).toBeNull();
    // Shown deleted at once (the copy the page had, one version on), not only when the event or a reload comes.
    expect(screen.getByText(/It is hidden from the board until restored/)).toBeTruthy();
    expect(offered()).toEqual(["Edit", "Restore"]);
  });
});

/** The hub's `member.updated` event for this user (u1), now with `role`. */
function roleChanged(role: string, offset: number) {
  const data = { workspace_id: "w1", user_id: "u1", email: "a@example.com", display_name: "Ada", role, joined_at: "x", updated_at: "x" };
  return { push: "pub", channel: "workspace:w1", offset, data: { id: `e${offset}`, type: "member.updated", channel: "workspace:w1", at: "x", data } };
}

describe("card page, when the role changes or cannot be read", () => {
  it("a member whose role could not be read is told so, not left silently read-only; Retry reads it again", async () => {
    workspaceDown = true;
    await mount();
    const alert = (await screen.findByText("Could not read your role in this workspace")).closest("[role=alert]") as HTMLElement;
    expect(offered()).toEqual([]);

    workspaceDown = false;
    fireEvent.click(within(alert).getByRole("button", { name: "Retry" }));
    await waitFor(() => expect(offered()).toEqual(["Edit", "Delete"]));
    expect(screen.queryByText("Could not read your role in this workspace")).toBeNull();
  });

  it("demoted with the edit dialog open: it closes, says the edit was not saved, and a promotion back does not reopen it", async () => {
    const socket = await mount();
    fireEvent.click(screen.getByRole("button", { name: "Edit" }));
    fireEvent.change(within(await screen.findByRole("dialog")).getByLabelText("Title"), { target: { value: "Mine" } });

    await act(async () => {
      socket.push(roleChanged("viewer", 1));
      await flush();
    });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    // (the toast; Radix may repeat its text for a moment in its announcer)
    expect(await screen.findAllByText("Your role in this workspace changed")).not.toHaveLength(0);
    expect(screen.getAllByText(/the edit was not saved/)).not.toHaveLength(0);

    await act(async () => {
      socket.push(roleChanged("member", 2));
      await flush();
    });
    await waitFor(() => expect(offered()).toEqual(["Edit", "Delete"]));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(socket.framesOf("rpc")).toHaveLength(0);
  });
});

describe("card page, an edit the hub made but could not answer (too_large, details.applied: the card is over what NATS carries)", () => {
  const APPLIED = { code: "too_large", status: 413, message: "the change was applied, but its answer is larger than the message bus carries", details: { applied: true } };

  it("shows it at the version it made, and so does the query cache (what a remount or the board reads); a toast says it was saved and why it will not be read back", async () => {
    const { socket, queries } = await mountWithCache();
    fireEvent.click(screen.getByRole("button", { name: "Edit" }));
    const dialog = await screen.findByRole("dialog");
    fireEvent.change(within(dialog).getByLabelText("Title"), { target: { value: "Mine" } });
    await act(async () => {
      fireEvent.click(within(dialog).getByRole("button", { name: /^Save$/ }));
    });
    const update = await lastRpc(socket, "resources.update");
    expect(update.params).toMatchObject({ resource_id: "r1", expected_version: 1, title: "Mine" });
    await act(async () => {
      socket.fail(update.id!, APPLIED);
      await flush();
    });

    await waitFor(() => expect(screen.getByTestId("resource-detail").getAttribute("data-version")).toBe("2"));
    expect(screen.getAllByText("Mine")).not.toHaveLength(0);
    expect(queries.getQueryData(resourceKeys.detail("w1", "r1"))).toMatchObject({ title: "Mine", body: "All of it.", version: 2 });
    expect(await screen.findAllByText("The change was saved")).not.toHaveLength(0);
    expect(screen.getAllByText(/too large for the server to send back/)).not.toHaveLength(0);
    expect(screen.queryByText("The change was not saved")).toBeNull();
    expect(socket.framesOf("rpc")).toHaveLength(1);
  });
});
