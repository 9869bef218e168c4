import { describe, expect, it } from "vitest";
import type { HubEvent, UserPublic } from "../api/types";
import { describeEvent } from "../notifications";

const ME: UserPublic = {
  id: "u1",
  email: "ada@example.com",
  display_name: "Ada",
  role: "member",
  is_active: true,
  email_verified: true,
  created_at: "2026-01-01T00:00:00Z",
  last_login_at: null,
};

const event = (type: string, data: Record<string, unknown>, actor = "u9"): HubEvent => ({
  id: "e1",
  type,
  channel: "user:u1",
  at: "2026-01-01T00:00:00Z",
  actor,
  data,
});

const member = (role: string) => ({ workspace_id: "w1", user_id: "u1", email: ME.email, display_name: "Ada", role });

describe("describeEvent", () => {
  it("tells the user about workspace membership changes made by others", () => {
    expect(describeEvent(event("member.added", member("viewer")), ME, "u1")).toEqual({
      title: "You were added to a workspace",
      description: "You are a viewer of it. Find it under Workspaces.",
    });
    expect(describeEvent(event("member.updated", member("admin")), ME, "u1")?.description).toBe("You are now an admin of the workspace.");
    expect(describeEvent(event("member.removed", member("member")), ME, "u1")?.title).toBe("You were removed from a workspace");
    expect(describeEvent(event("workspace.deleted", { id: "w1", name: "Launch" }), ME, "u1")?.description).toBe("“Launch” no longer exists.");
  });

  it("stays quiet about the user's own actions", () => {
    for (const type of ["member.added", "member.updated", "member.removed", "workspace.deleted"]) {
      expect(describeEvent(event(type, member("member"), "u1"), ME, "u1")).toBeNull();
    }
  });

  it("reports a role change and a rename by an administrator", () => {
    expect(describeEvent(event("user.updated", { ...ME, role: "admin" }), ME, "u1")?.title).toBe("Your role changed");
    expect(describeEvent(event("user.updated", { ...ME, display_name: "Ada Lovelace" }), ME, "u1")?.description).toBe(
      "An administrator renamed you to Ada Lovelace.",
    );
  });

  it("a name that ends in a period does not get a second one (the double-period toast)", () => {
    const renamed = describeEvent(event("user.updated", { ...ME, display_name: "Ada L." }), ME, "u1");
    expect(renamed?.description).toBe("An administrator renamed you to Ada L.");
    const own = describeEvent(event("user.updated", { ...ME, display_name: "Ada L." }, "u1"), ME, "u1");
    expect(own?.description).toBe("Your name is now Ada L.");
    expect(own?.description).not.toMatch(/\.\.$/);
  });
});
