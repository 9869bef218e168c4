import { describe, expect, it } from "vitest";
import type { HubEvent } from "../../api/types";
import type { ActivityPublic, InvitationPublic, MemberPublic, MyWorkspace } from "../../api/workspaces";
import {
  appendPage,
  applyInvitationEvent,
  applyMemberEvent,
  describeActivity,
  isActivityEvent,
  mergeActivity,
  upsertWorkspace,
} from "../live";

const act = (id: number, action = "resource.created", summary: Record<string, unknown> = {}): ActivityPublic => ({
  id,
  action,
  summary,
  workspace_id: "w1",
  actor_id: "u1",
  subject_type: action.split(".")[0]!,
  subject_id: `s${id}`,
  before_version: null,
  after_version: 1,
  at: "2026-01-01T00:00:00Z",
});

const member = (user_id: string, email: string, role: MemberPublic["role"] = "member", workspace_id = "w1"): MemberPublic => ({
  workspace_id,
  user_id,
  email,
  display_name: email,
  role,
  joined_at: "x",
  updated_at: "x",
});

const event = (type: string, data: unknown): HubEvent<unknown> => ({ id: "e", type, channel: "workspace:w1", at: "x", data });

describe("mergeActivity", () => {
  it("keeps newest first, each id once, the later copy winning", () => {
    const shown = [act(5), act(3), act(2)];
    const firstPage = [act(7), act(6), act(5, "resource.updated"), act(3)];
    const merged = mergeActivity(shown, firstPage);
    expect(merged.map((e) => e.id)).toEqual([7, 6, 5, 3, 2]);
    expect(merged.find((e) => e.id === 5)!.action).toBe("resource.updated");
  });

  it("is a no-op on an empty input and does not mutate its arguments", () => {
    const shown = [act(2), act(1)];
    expect(mergeActivity(shown, [])).toEqual(shown);
    mergeActivity(shown, [act(9)]);
    expect(shown.map((e) => e.id)).toEqual([2, 1]);
  });
});

describe("appendPage", () => {
  it("skips rows already shown", () => {
    expect(appendPage([act(5), act(4)], [act(4), act(3)], (e) => e.id).map((e) => e.id)).toEqual([5, 4, 3]);
  });
});

describe("applyMemberEvent", () => {
  const list = [member("u1", "a@x"), member("u3", "c@x")];

  it("adds in email order, updates in place, removes", () => {
    const added = applyMemberEvent(list, event("member.added", member("u2", "b@x")), "w1");
    expect(added.map((m) => m.user_id)).toEqual(["u1", "u2", "u3"]);
    const updated = applyMemberEvent(added, event("member.updated", member("u2", "b@x", "admin")), "w1");
    expect(updated.find((m) => m.user_id === "u2")!.role).toBe("admin");
    expect(updated).toHaveLength(3);
    const removed = applyMemberEvent(updated, event("member.removed", member("u2", "b@x", "admin")), "w1");
    expect(removed.map((m) => m.user_id)).toEqual(["u1", "u3"]);
  });

  it("an added event for a member already listed (our own add, then its event) does not duplicate", () => {
    const once = applyMemberEvent(list, event("member.added", member("u3", "c@x")), "w1");
    expect(once).toHaveLength(2);
  });

  it("ignores other events, other workspaces and malformed data (same array back)", () => {
    expect(applyMemberEvent(list, event("resource.created", { id: "r1" }), "w1")).toBe(list);
    expect(applyMemberEvent(list, event("member.added", member("u9", "z@x", "member", "w2")), "w1")).toBe(list);
    expect(applyMemberEvent(list, event("member.added", null), "w1")).toBe(list);
  });
});

describe("upsertWorkspace", () => {
  const w = (id: string, name = id): MyWorkspace => ({ id, name, role: "owner", version: 1, created_by: null, created_at: "x", updated_at: "x" });
  it("puts a new workspace first and replaces a known one in place", () => {
    const list = [w("a"), w("b")];
    expect(upsertWorkspace(list, w("c")).map((x) => x.id)).toEqual(["c", "a", "b"]);
    expect(upsertWorkspace(list, w("b", "B2")).map((x) => x.name)).toEqual(["a", "B2"]);
  });
});

describe("activity wording", () => {
  it("says what happened", () => {
    expect(describeActivity(act(1, "resource.created", { title: "Fix login", kind: "task" }))).toBe("created task “Fix login”");
    expect(describeActivity(act(1, "member.added", { email: "b@x", role: "admin" }))).toBe("added a member: b@x (admin)");
    expect(describeActivity(act(1, "workspace.created"))).toBe("created the workspace");
    expect(describeActivity(act(1, "something.new"))).toBe("something.new");
  });

  it("knows which events write activity", () => {
    expect(["resource.updated", "member.removed", "workspace.updated", "invitation.created"].every(isActivityEvent)).toBe(true);
    expect(isActivityEvent("user.updated")).toBe(false);
  });
});

const invitation = (id: string, email: string, role: InvitationPublic["role"] = "member", workspace_id = "w1"): InvitationPublic => ({
  id,
  workspace_id,
  email,
  role,
  status: "pending",
  invited_by: "u1",
  created_at: "x",
  expires_at: "y",
});

describe("applyInvitationEvent", () => {
  const pending = [invitation("i1", "ann@example.com"), invitation("i2", "cy@example.com")];

  it("adds a new invitation in email order, and a new one for a pending email replaces it", () => {
    const added = applyInvitationEvent(pending, event("invitation.created", invitation("i3", "bo@example.com")), "w1");
    expect(added.map((i) => i.id)).toEqual(["i1", "i3", "i2"]);
    const replaced = applyInvitationEvent(added, event("invitation.created", invitation("i4", "cy@example.com", "viewer")), "w1");
    expect(replaced.map((i) => [i.id, i.role])).toEqual([
      ["i1", "member"],
      ["i3", "member"],
      ["i4", "viewer"],
    ]);
  });

  it("removes a declined or revoked invitation, and the email of a member who joined", () => {
    expect(applyInvitationEvent(pending, event("invitation.revoked", { ...pending[0], status: "revoked" }), "w1").map((i) => i.id)).toEqual(["i2"]);
    expect(applyInvitationEvent(pending, event("invitation.declined", { ...pending[1], status: "declined" }), "w1").map((i) => i.id)).toEqual(["i1"]);
    expect(applyInvitationEvent(pending, event("member.added", member("u9", "cy@example.com")), "w1").map((i) => i.id)).toEqual(["i1"]);
  });

  it("leaves the list (the same array) for other events, other workspaces and unknown ids", () => {
    expect(applyInvitationEvent(pending, event("resource.created", { workspace_id: "w1", id: "r" }), "w1")).toBe(pending);
    expect(applyInvitationEvent(pending, event("invitation.created", invitation("i5", "x@example.com", "member", "w2")), "w1")).toBe(pending);
    expect(applyInvitationEvent(pending, event("invitation.revoked", invitation("nope", "z@example.com")), "w1")).toBe(pending);
    expect(applyInvitationEvent(pending, event("member.added", member("u8", "z@example.com")), "w1")).toBe(pending);
    expect(applyInvitationEvent(pending, event("invitation.revoked", null), "w1")).toBe(pending);
  });

  it("describes a revocation in the activity feed", () => {
    expect(describeActivity({ action: "invitation.revoked", summary: { email: "gil@example.com" }, subject_type: "invitation" })).toBe(
      "revoked an invitation: gil@example.com",
    );
  });
});
