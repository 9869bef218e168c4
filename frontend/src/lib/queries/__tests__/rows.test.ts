import { InfiniteQueryObserver, QueryClient, type InfiniteData } from "@tanstack/react-query";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "@/lib/api/client";
import type { Resource, ResourcePage } from "@/lib/api/resources";
import type { InvitationPage, InvitationPublic, MemberPage, MemberPublic, MyWorkspace, WorkspacePage } from "@/lib/api/workspaces";
import type { DomainEvent } from "@/lib/realtime/events";

/**
 * Members and pending invitations carry no version: a page read that was on
 * its way when an event (or a reply) changed the list must not undo it. Each
 * test sends the read, lets the event arrive, and only then answers the read
 * with what the hub had before the change.
 */
const WS = "w1";
const MEMBERS = "GET /api/v1/workspaces/w1/members?limit=100";
const PAGE2 = `${MEMBERS}&cursor=c`;
const INVITATIONS = "GET /api/v1/workspaces/w1/invitations?limit=100";

interface Pending {
  key: string;
  answer: (body: unknown) => void;
}
const pending: Pending[] = [];
const fetchImpl = vi.fn(
  (url: string | URL | Request, init?: RequestInit) =>
    new Promise<Response>((resolve) => {
      pending.push({ key: `${init?.method ?? "GET"} ${String(url)}`, answer: (body) => resolve(new Response(JSON.stringify(body), { status: 200 })) });
    }),
);
const api = new ApiClient({ fetch: fetchImpl as unknown as typeof fetch, tokens: { getToken: async () => "t" } });
vi.mock("@/lib/services", () => ({ getServices: () => ({ api }) }));

const { membersQueryOptions, invitationsQueryOptions, resourcesQueryOptions, workspacesQueryOptions } = await import("../hooks");
const { applyWorkspaceEvent, setWorkspace } = await import("../cache");
const { applyUserEvent } = await import("../live");
const { resourceKeys, workspaceKeys } = await import("../keys");

afterEach(() => {
  pending.length = 0;
});

/** The request to `key` once it is on its way (the client reads its token first). */
async function sent(key: string): Promise<Pending> {
  await vi.waitFor(() => expect(pending.map((p) => p.key)).toContain(key));
  const at = pending.findIndex((p) => p.key === key);
  return pending.splice(at, 1)[0]!;
}

const member = (user_id: string, role: MemberPublic["role"] = "member"): MemberPublic => ({
  workspace_id: WS,
  user_id,
  email: `${user_id}@x`,
  display_name: user_id,
  role,
  joined_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
});
const invitation = (id: string, email: string): InvitationPublic => ({
  id,
  workspace_id: WS,
  email,
  role: "member",
  status: "pending",
  invited_by: "a",
  created_at: "2026-01-01T00:00:00Z",
  expires_at: "2026-01-08T00:00:00Z",
});
const ev = (type: string, data: unknown): DomainEvent => ({ id: `e-${type}`, type, channel: `workspace:${WS}`, at: "2026-01-01T00:00:01Z", data }) as DomainEvent;
const page = <T>(items: T[], next_cursor: string | null = null) => ({ items, next_cursor });

const memberPages = (client: QueryClient) =>
  client.getQueryData<InfiniteData<MemberPage>>(workspaceKeys.members(WS))!.pages.map((p) => p.items.map((m) => `${m.user_id}:${m.role}`));
const invitationPages = (client: QueryClient) =>
  client.getQueryData<InfiniteData<InvitationPage>>(workspaceKeys.invitations(WS))!.pages.map((p) => p.items.map((i) => `${i.id}:${i.email}`));

describe("a members page that was on its way when an event came", () => {
  it("does not bring back a removed member, an older role, nor lose an added member (the first read: nothing cached yet)", async () => {
    const client = new QueryClient();
    const reading = client.fetchInfiniteQuery(membersQueryOptions(client, WS));
    const read = await sent(MEMBERS);
    applyWorkspaceEvent(client, WS, ev("member.removed", member("b")), "a");
    applyWorkspaceEvent(client, WS, ev("member.updated", member("c", "admin")), "a");
    applyWorkspaceEvent(client, WS, ev("member.added", member("d", "viewer")), "a");
    read.answer(page([member("a", "owner"), member("b"), member("c")]));
    await reading;
    expect(memberPages(client)).toEqual([["a:owner", "c:admin", "d:viewer"]]);
  });

  it("a read sent after the event is the newer word: a member who came back stays", async () => {
    const client = new QueryClient();
    applyWorkspaceEvent(client, WS, ev("member.removed", member("b")), "a");
    const reading = client.fetchInfiniteQuery(membersQueryOptions(client, WS));
    (await sent(MEMBERS)).answer(page([member("a", "owner"), member("b", "viewer")]));
    await reading;
    expect(memberPages(client)).toEqual([["a:owner", "b:viewer"]]);
  });

  it("a refetch of every loaded page: an event between the first page's answer and the last's is kept", async () => {
    const client = new QueryClient();
    const observer = new InfiniteQueryObserver(client, membersQueryOptions(client, WS));
    const load = observer.refetch();
    (await sent(MEMBERS)).answer(page([member("a", "owner"), member("c")], "c"));
    await load;
    const more = observer.fetchNextPage();
    (await sent(PAGE2)).answer(page([member("e"), member("g")], "g"));
    await more;

    const refetch = observer.refetch();
    (await sent(MEMBERS)).answer(page([member("a", "owner"), member("c")], "c"));
    const second = await sent(PAGE2);
    applyWorkspaceEvent(client, WS, ev("member.removed", member("c")), "a"); // on the first page, already answered
    applyWorkspaceEvent(client, WS, ev("member.added", member("b")), "a"); // sorts into the first page
    applyWorkspaceEvent(client, WS, ev("member.added", member("f")), "a"); // into the second
    applyWorkspaceEvent(client, WS, ev("member.added", member("z")), "a"); // after the second, and more follow: Load more brings it
    second.answer(page([member("e"), member("g")], "g"));
    await refetch;
    expect(memberPages(client)).toEqual([
      ["a:owner", "b:member"],
      ["e:member", "f:member", "g:member"],
    ]);
  });

  it("Load more: the new page drops a member removed while it was read; the loaded pages keep what events made of them", async () => {
    const client = new QueryClient();
    const observer = new InfiniteQueryObserver(client, membersQueryOptions(client, WS));
    const load = observer.refetch();
    (await sent(MEMBERS)).answer(page([member("a", "owner"), member("c")], "c"));
    await load;
    const more = observer.fetchNextPage();
    const next = await sent(PAGE2);
    applyWorkspaceEvent(client, WS, ev("member.removed", member("e")), "a");
    applyWorkspaceEvent(client, WS, ev("member.updated", member("c", "viewer")), "a");
    next.answer(page([member("e"), member("g")]));
    await more;
    expect(memberPages(client)).toEqual([["a:owner", "c:viewer"], ["g:member"]]);
  });
});

describe("a pending-invitations page that was on its way when an event came", () => {
  it("does not bring back a revoked, declined or accepted invitation, nor one a newer invitation replaced", async () => {
    const client = new QueryClient();
    const reading = client.fetchInfiniteQuery(invitationsQueryOptions(client, WS));
    const read = await sent(INVITATIONS);
    applyWorkspaceEvent(client, WS, ev("invitation.revoked", invitation("i1", "a@x")), "a");
    applyWorkspaceEvent(client, WS, ev("invitation.declined", invitation("i2", "b@x")), "a");
    applyWorkspaceEvent(client, WS, ev("member.added", { ...member("u9"), email: "c@x" }), "a"); // c@x accepted
    applyWorkspaceEvent(client, WS, ev("invitation.created", invitation("i7", "d@x")), "a"); // replaces i4
    applyWorkspaceEvent(client, WS, ev("invitation.created", invitation("i8", "f@x")), "a"); // new
    read.answer(page([invitation("i1", "a@x"), invitation("i2", "b@x"), invitation("i3", "c@x"), invitation("i4", "d@x"), invitation("i5", "e@x")]));
    await reading;
    expect(invitationPages(client)).toEqual([["i7:d@x", "i5:e@x", "i8:f@x"]]);
  });

  it("an email invited again after a revoke, read after both events, stays", async () => {
    const client = new QueryClient();
    applyWorkspaceEvent(client, WS, ev("invitation.revoked", invitation("i1", "a@x")), "a");
    const reading = client.fetchInfiniteQuery(invitationsQueryOptions(client, WS));
    (await sent(INVITATIONS)).answer(page([invitation("i9", "a@x")]));
    await reading;
    expect(invitationPages(client)).toEqual([["i9:a@x"]]);
  });
});

describe("the board's listing while its next page is read", () => {
  const res = (id: string, version: number): Resource => ({
    id,
    workspace_id: WS,
    kind: "task",
    title: `${id}@${version}`,
    body: "",
    status: "open",
    position: "a0",
    tags: [],
    data: {},
    version,
    created_by: "a",
    updated_by: "a",
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
    deleted_at: null,
  });
  const LIST = "GET /api/v1/workspaces/w1/resources?limit=100";
  const titles = (client: QueryClient) => client.getQueryData<InfiniteData<ResourcePage>>(resourceKeys.list(WS, {}))!.pages.map((p) => p.items.map((r) => r.title));

  it("keeps what events did to the loaded pages (a fetch of the next page stores the pages it started with)", async () => {
    const client = new QueryClient();
    const observer = new InfiniteQueryObserver(client, resourcesQueryOptions(client, WS, {}));
    const load = observer.refetch();
    (await sent(LIST)).answer(page([res("a", 1), res("b", 1)], "c2"));
    await load;
    const more = observer.fetchNextPage();
    const next = await sent(`${LIST}&cursor=c2`);
    applyWorkspaceEvent(client, WS, ev("resource.updated", res("a", 2)), "a");
    applyWorkspaceEvent(client, WS, ev("resource.deleted", { ...res("b", 2), hard: false }), "a");
    applyWorkspaceEvent(client, WS, ev("resource.deleted", { ...res("d", 2), hard: true }), "a");
    next.answer(page([res("c", 1), res("d", 1)]));
    await more;
    expect(titles(client)).toEqual([["a@2"], ["c@1"]]);
  });

  it("a refetch of every page: an update that came after the first page's answer is kept", async () => {
    const client = new QueryClient();
    const observer = new InfiniteQueryObserver(client, resourcesQueryOptions(client, WS, {}));
    const load = observer.refetch();
    (await sent(LIST)).answer(page([res("a", 1)], "c2"));
    await load;
    const more = observer.fetchNextPage();
    (await sent(`${LIST}&cursor=c2`)).answer(page([res("c", 1)]));
    await more;
    const refetch = observer.refetch();
    (await sent(LIST)).answer(page([res("a", 1)], "c2"));
    const second = await sent(`${LIST}&cursor=c2`);
    applyWorkspaceEvent(client, WS, ev("resource.updated", res("a", 3)), "a");
    second.answer(page([res("c", 1)]));
    await refetch;
    expect(titles(client)).toEqual([["a@3"], ["c@1"]]);
  });
  it("a card created while the first page is read stays on top (first read and refetch); one the read already shows is not doubled", async () => {
    const client = new QueryClient();
    const observer = new InfiniteQueryObserver(client, resourcesQueryOptions(client, WS, {}));
    const load = observer.refetch();
    const first = await sent(LIST);
    applyWorkspaceEvent(client, WS, ev("resource.created", res("n", 1)), "a");
    first.answer(page([res("a", 1)]));
    await load;
    expect(titles(client)).toEqual([["n@1", "a@1"]]);

    const refetch = observer.refetch();
    const again = await sent(LIST);
    applyWorkspaceEvent(client, WS, ev("resource.created", res("m", 1)), "a");
    applyWorkspaceEvent(client, WS, ev("resource.created", res("k", 1)), "a");
    again.answer(page([res("n", 1), res("a", 1)]));
    await refetch;
    expect(titles(client)).toEqual([["k@1", "m@1", "n@1", "a@1"]]);
  });

  it("a card created and deleted while the first page is read stays out; one read after its event is the hub's word", async () => {
    const client = new QueryClient();
    const observer = new InfiniteQueryObserver(client, resourcesQueryOptions(client, WS, {}));
    applyWorkspaceEvent(client, WS, ev("resource.created", res("x", 1)), "a"); // learnt before the read: the read decides
    const load = observer.refetch();
    const first = await sent(LIST);
    applyWorkspaceEvent(client, WS, ev("resource.created", res("n", 1)), "a");
    applyWorkspaceEvent(client, WS, ev("resource.deleted", { ...res("n", 2), hard: false }), "a");
    first.answer(page([res("a", 1)]));
    await load;
    expect(titles(client)).toEqual([["a@1"]]);
  });
});

describe("the list of workspaces while it is read", () => {
  const LIST = "GET /api/v1/workspaces?limit=20";
  const myWs = (id: string, version = 1): MyWorkspace => ({ id, name: `${id}@${version}`, role: "member", version, created_by: "a", created_at: "x", updated_at: "x" });
  const names = (client: QueryClient) => client.getQueryData<InfiniteData<WorkspacePage>>(workspaceKeys.list())!.pages.map((p) => p.items.map((w) => w.name));

  it("a workspace the user was removed from, or that was deleted, stays out; one they joined meanwhile goes on top", async () => {
    const client = new QueryClient();
    const reading = client.fetchInfiniteQuery(workspacesQueryOptions(client));
    const read = await sent(LIST);
    applyUserEvent(client, ev("member.removed", { ...member("me"), workspace_id: "w2" }), "me");
    applyUserEvent(client, ev("workspace.deleted", { id: "w3", name: "w3", version: 1, created_by: "a", created_at: "x", updated_at: "x" }), "me");
    setWorkspace(client, myWs("w9")); // member.added on user:<me> reads the workspace, then puts it in
    setWorkspace(client, myWs("w1", 2)); // renamed here
    read.answer(page([myWs("w1"), myWs("w2"), myWs("w3"), myWs("w4")]));
    await reading;
    expect(names(client)).toEqual([["w9@1", "w1@2", "w4@1"]]);
  });

  it("a read sent after the removal is the newer word: rejoined, it is listed", async () => {
    const client = new QueryClient();
    applyUserEvent(client, ev("member.removed", { ...member("me"), workspace_id: "w2" }), "me");
    const reading = client.fetchInfiniteQuery(workspacesQueryOptions(client));
    (await sent(LIST)).answer(page([myWs("w2", 3)]));
    await reading;
    expect(names(client)).toEqual([["w2@3"]]);
  });
});
