import { QueryClient, type InfiniteData } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import type { Resource, ResourcePage } from "../../api/resources";
import type { InvitationPage, InvitationPublic, MemberPage, MemberPublic, MyWorkspace, WorkspacePage } from "../../api/workspaces";
import type { DomainEvent } from "../../realtime/events";
import { applyMadeEdit, applyWorkspaceEvent, flattenPages, reconcilePage, setWorkspace } from "../cache";
import { resourceKeys, workspaceKeys } from "../keys";
import { applyUserEvent } from "../live";

const WS = "w1";
const res = (id: string, version: number, extra: Partial<Resource> = {}): Resource => ({
  id,
  workspace_id: WS,
  kind: "task",
  title: id,
  body: "",
  status: "open",
  position: "a0",
  tags: [],
  data: {},
  version,
  created_by: "u1",
  updated_by: "u1",
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
  deleted_at: null,
  ...extra,
});
const ev = (type: string, data: unknown): DomainEvent => ({ id: `e-${type}`, type, channel: `workspace:${WS}`, at: "x", data }) as DomainEvent;
const pages = <T>(...lists: T[][]): InfiniteData<{ items: T[]; next_cursor: string | null }, string | null> => ({
  pages: lists.map((items, i) => ({ items, next_cursor: i < lists.length - 1 ? `c${i + 1}` : null })),
  pageParams: lists.map((_, i) => (i === 0 ? null : `c${i}`)),
});
const member = (user_id: string, role: MemberPublic["role"]): MemberPublic => ({
  workspace_id: WS,
  user_id,
  email: `${user_id}@x`,
  display_name: user_id,
  role,
  joined_at: "x",
  updated_at: "x",
});
const myWs = (id: string, version = 1, role: MyWorkspace["role"] = "member"): MyWorkspace => ({
  id,
  name: `ws ${id}`,
  role,
  version,
  created_by: "u1",
  created_at: "x",
  updated_at: "x",
});

const invitation = (id: string, email: string): InvitationPublic =>
  ({ id, workspace_id: WS, email, role: "member", invited_by: "u1", created_at: "x", expires_at: "x", status: "pending" }) as InvitationPublic;
const memberPages = (client: QueryClient) => client.getQueryData<InfiniteData<MemberPage>>(workspaceKeys.members(WS))!.pages.map((p) => p.items.map((m) => m.user_id));
const invitationPages = (client: QueryClient) =>
  client.getQueryData<InfiniteData<InvitationPage>>(workspaceKeys.invitations(WS))!.pages.map((p) => p.items.map((i) => i.id));

function seeded() {
  const client = new QueryClient();
  client.setQueryData(resourceKeys.list(WS, {}), pages([res("a", 1), res("b", 1)], [res("c", 1)]));
  client.setQueryData(resourceKeys.list(WS, { status: "done" }), pages<Resource>([]));
  client.setQueryData<ResourcePage>(resourceKeys.trash(WS), { items: [], next_cursor: null });
  client.setQueryData(resourceKeys.detail(WS, "b"), res("b", 1));
  return client;
}
const listed = (client: QueryClient, filters = {}) =>
  flattenPages(client.getQueryData<InfiniteData<ResourcePage>>(resourceKeys.list(WS, filters)), (r) => r.id).map((r) => `${r.id}@${r.version}`);
const trash = (client: QueryClient) => client.getQueryData<ResourcePage>(resourceKeys.trash(WS))!.items.map((r) => `${r.id}@${r.version}`);

describe("resource events in the cache", () => {
  it("a created resource goes on top of the first page of every live listing, once", () => {
    const client = seeded();
    applyWorkspaceEvent(client, WS, ev("resource.created", res("n", 1)), null);
    applyWorkspaceEvent(client, WS, ev("resource.created", res("n", 1)), null); // the echo of our own reply
    expect(listed(client)).toEqual(["n@1", "a@1", "b@1", "c@1"]);
    expect(listed(client, { status: "done" })).toEqual(["n@1"]);
    expect(trash(client)).toEqual([]);
  });

  it("takes a newer version where the resource is, in place, and never an older one", () => {
    const client = seeded();
    applyWorkspaceEvent(client, WS, ev("resource.updated", res("c", 3, { title: "three" })), null);
    applyWorkspaceEvent(client, WS, ev("resource.updated", res("c", 2, { title: "two" })), null);
    applyWorkspaceEvent(client, WS, ev("resource.updated", res("b", 2)), null);
    expect(listed(client)).toEqual(["a@1", "b@2", "c@3"]);
    expect(client.getQueryData<Resource>(resourceKeys.detail(WS, "b"))!.version).toBe(2);
    const data = client.getQueryData<InfiniteData<ResourcePage>>(resourceKeys.list(WS, {}))!;
    expect(data.pages[1]!.items[0]!.title).toBe("three");
  });

  it("a soft delete moves it to the trash, a restore back, a hard delete ends it everywhere", () => {
    const client = seeded();
    applyWorkspaceEvent(client, WS, ev("resource.deleted", { ...res("a", 2, { deleted_at: "t" }), hard: false }), null);
    expect(listed(client)).toEqual(["b@1", "c@1"]);
    expect(trash(client)).toEqual(["a@2"]);
    applyWorkspaceEvent(client, WS, ev("resource.restored", res("a", 3)), null);
    expect(listed(client)).toEqual(["a@3", "b@1", "c@1"]);
    expect(trash(client)).toEqual([]);
    applyWorkspaceEvent(client, WS, ev("resource.deleted", { ...res("b", 2), hard: true }), null);
    applyWorkspaceEvent(client, WS, ev("resource.restored", res("b", 9)), null); // nothing comes back from a hard delete
    expect(listed(client)).toEqual(["a@3", "c@1"]);
    expect(client.getQueryData(resourceKeys.detail(WS, "b"))).toBeUndefined();
  });

  it("a page read before an event cannot undo it (newer copies kept, deleted rows dropped)", () => {
    const client = seeded();
    applyWorkspaceEvent(client, WS, ev("resource.updated", res("a", 4, { title: "new" })), null);
    applyWorkspaceEvent(client, WS, ev("resource.deleted", { ...res("c", 2), hard: false }), null);
    const stale: ResourcePage = { items: [res("a", 3), res("b", 1), res("c", 1)], next_cursor: null };
    expect(reconcilePage(client, WS, stale, false).items.map((r) => `${r.id}@${r.version}:${r.title}`)).toEqual(["a@4:new", "b@1:b"]);
    expect(reconcilePage(client, WS, { items: [res("c", 1)], next_cursor: null }, true).items.map((r) => r.version)).toEqual([2]);
  });

  it("events of another workspace are ignored", () => {
    const client = seeded();
    applyWorkspaceEvent(client, WS, ev("resource.created", { ...res("x", 1), workspace_id: "w2" }), null);
    expect(listed(client)).toEqual(["a@1", "b@1", "c@1"]);
  });
});

describe("an edit the hub made but could not send back (too_large, details.applied)", () => {
  const detail = (client: QueryClient, id: string) => client.getQueryData<Resource>(resourceKeys.detail(WS, id));
  const inList = (client: QueryClient, id: string) =>
    flattenPages(client.getQueryData<InfiniteData<ResourcePage>>(resourceKeys.list(WS, {})), (r) => r.id).find((r) => r.id === id);

  it("is laid over the cached copy, at the version it made, wherever the card is cached; a read older than it does not undo it", () => {
    const client = seeded();
    applyMadeEdit(client, WS, "b", { title: "mine" }, 2);
    expect(detail(client, "b")).toMatchObject({ title: "mine", version: 2 });
    expect(inList(client, "b")).toMatchObject({ title: "mine", version: 2 });
    expect(reconcilePage(client, WS, { items: [res("b", 1)], next_cursor: null }, false).items).toMatchObject([{ title: "mine", version: 2 }]);
  });

  it("a second one goes on top of the first; one the cache already has (at or past its version) changes nothing", () => {
    const client = seeded();
    applyMadeEdit(client, WS, "a", { title: "mine", body: "big" }, 2);
    applyMadeEdit(client, WS, "a", { status: "done" }, 3);
    expect(inList(client, "a")).toMatchObject({ title: "mine", body: "big", status: "done", version: 3 });
    applyMadeEdit(client, WS, "a", { title: "late" }, 3);
    expect(inList(client, "a")).toMatchObject({ title: "mine", version: 3 });
  });

  it("a card the cache does not hold stays out of it", () => {
    const client = seeded();
    applyMadeEdit(client, WS, "z", { title: "mine" }, 2);
    expect(listed(client)).toEqual(["a@1", "b@1", "c@1"]);
    expect(detail(client, "z")).toBeUndefined();
  });
});

describe("workspace, member and invitation events", () => {
  it("member.* keep the members and invitations; the caller's own role and removal reach the workspace", () => {
    const client = new QueryClient();
    client.setQueryData(workspaceKeys.members(WS), pages([member("u1", "owner")]));
    client.setQueryData(workspaceKeys.invitations(WS), pages([invitation("i1", "u2@x")]));
    client.setQueryData(workspaceKeys.detail(WS), myWs(WS, 1, "owner"));
    client.setQueryData(workspaceKeys.list(), pages([myWs("w0"), myWs(WS, 1, "owner")]));

    applyWorkspaceEvent(client, WS, ev("member.added", member("u2", "member")), "u1");
    expect(memberPages(client)).toEqual([["u1", "u2"]]);
    expect(invitationPages(client)).toEqual([[]]); // accepted

    applyWorkspaceEvent(client, WS, ev("member.updated", member("u1", "admin")), "u1");
    expect(client.getQueryData<MyWorkspace>(workspaceKeys.detail(WS))!.role).toBe("admin");

    applyWorkspaceEvent(client, WS, ev("workspace.updated", { id: WS, name: "Renamed", version: 2, created_by: "u1", created_at: "x", updated_at: "y" }), "u1");
    expect(client.getQueryData<MyWorkspace>(workspaceKeys.detail(WS))).toMatchObject({ name: "Renamed", version: 2, role: "admin" });
    applyWorkspaceEvent(client, WS, ev("workspace.updated", { id: WS, name: "Older", version: 1, created_by: "u1", created_at: "x", updated_at: "x" }), "u1");
    expect(client.getQueryData<MyWorkspace>(workspaceKeys.detail(WS))!.name).toBe("Renamed");

    applyWorkspaceEvent(client, WS, ev("member.removed", member("u1", "admin")), "u1");
    const list = client.getQueryData<InfiniteData<WorkspacePage>>(workspaceKeys.list())!;
    expect(flattenPages(list, (w) => w.id).map((w) => w.id)).toEqual(["w0"]);
  });

  it("member.* and invitation.* across loaded pages: in place, into the page the email belongs to, or left for Load more", () => {
    const client = new QueryClient();
    // Two pages loaded (a..c, d..f) and more on the hub after f.
    client.setQueryData(workspaceKeys.members(WS), {
      pages: [
        { items: [member("a", "owner"), member("c", "member")], next_cursor: "c" },
        { items: [member("d", "member"), member("f", "member")], next_cursor: "f" },
      ],
      pageParams: [null, "c"],
    });
    applyWorkspaceEvent(client, WS, ev("member.updated", member("f", "admin")), null);
    applyWorkspaceEvent(client, WS, ev("member.added", member("b", "viewer")), null);
    applyWorkspaceEvent(client, WS, ev("member.added", member("e", "viewer")), null);
    applyWorkspaceEvent(client, WS, ev("member.added", member("z", "viewer")), null); // after every loaded page: the next page brings it
    applyWorkspaceEvent(client, WS, ev("member.added", member("b", "viewer")), null); // a repeat changes nothing
    applyWorkspaceEvent(client, WS, ev("member.removed", member("d", "member")), null);
    expect(memberPages(client)).toEqual([
      ["a", "b", "c"],
      ["e", "f"],
    ]);
    const roles = client.getQueryData<InfiniteData<MemberPage>>(workspaceKeys.members(WS))!.pages[1]!.items.map((m) => m.role);
    expect(roles).toEqual(["viewer", "admin"]);

    // The last page loaded (no next cursor): a member after it goes on it.
    client.setQueryData(workspaceKeys.members(WS), pages([member("a", "owner")], [member("d", "member")]));
    applyWorkspaceEvent(client, WS, ev("member.added", member("z", "viewer")), null);
    expect(memberPages(client)).toEqual([["a"], ["d", "z"]]);

    client.setQueryData(workspaceKeys.invitations(WS), pages([invitation("i1", "a@x"), invitation("i2", "c@x")], [invitation("i3", "e@x")]));
    applyWorkspaceEvent(client, WS, ev("invitation.created", invitation("i4", "b@x")), null);
    applyWorkspaceEvent(client, WS, ev("invitation.created", invitation("i5", "e@x")), null); // a new invitation for e@x replaces i3
    applyWorkspaceEvent(client, WS, ev("invitation.revoked", invitation("i1", "a@x")), null);
    applyWorkspaceEvent(client, WS, ev("invitation.declined", invitation("i2", "c@x")), null);
    applyWorkspaceEvent(client, WS, ev("member.added", { ...member("u9", "member"), email: "b@x" }), null); // accepted
    expect(invitationPages(client)).toEqual([[], ["i5"]]);
    applyWorkspaceEvent(client, WS, ev("invitation.created", { ...invitation("i6", "a@x"), workspace_id: "w2" }), null); // another workspace
    expect(invitationPages(client)).toEqual([[], ["i5"]]);
  });

  it("setWorkspace replaces a listed workspace in place and puts a new one on top", () => {
    const client = new QueryClient();
    client.setQueryData(workspaceKeys.list(), pages([myWs("a")], [myWs("b")]));
    setWorkspace(client, { ...myWs("b", 2), name: "B2" });
    setWorkspace(client, myWs("n"));
    const list = client.getQueryData<InfiniteData<WorkspacePage>>(workspaceKeys.list())!;
    expect(list.pages.map((p) => p.items.map((w) => `${w.id}:${w.name}`))).toEqual([["n:ws n", "a:ws a"], ["b:B2"]]);
  });

  it("user events: removal and deletion drop the workspace; being added elsewhere with no list cached reads nothing", () => {
    const client = new QueryClient();
    applyUserEvent(client, ev("member.added", member("me", "member")), "me"); // no list cached: no request (getServices is never called)
    client.setQueryData(workspaceKeys.list(), pages([myWs(WS), myWs("w2")]));
    applyUserEvent(client, ev("member.removed", member("someone-else", "member")), "me");
    applyUserEvent(client, ev("workspace.deleted", { id: "w2", name: "x", version: 1, created_by: null, created_at: "x", updated_at: "x" }), "me");
    expect(flattenPages(client.getQueryData<InfiniteData<WorkspacePage>>(workspaceKeys.list()), (w) => w.id).map((w) => w.id)).toEqual([WS]);
    applyUserEvent(client, ev("member.removed", member("me", "member")), "me");
    expect(flattenPages(client.getQueryData<InfiniteData<WorkspacePage>>(workspaceKeys.list()), (w) => w.id)).toEqual([]);
  });
});
