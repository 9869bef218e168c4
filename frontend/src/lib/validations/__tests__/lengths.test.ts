import { describe, expect, it } from "vitest";
import { resourceFormSchema } from "../../board/schema";
import { newPassword, profileSchema } from "../auth";
import { workspaceNameSchema } from "../workspaces";

/**
 * The forms count characters as the hub does (code points), not UTF-16 units:
 * an emoji is one character, though `"😀".length` is 2. zod's `.min()`/`.max()`
 * count code points for strings; this holds the forms to it.
 */
const EMOJI = "😀";
const form = { kind: "task", status: "open", tags: "", body: "" };

describe("the forms' limits, in characters", () => {
  it("take a title of 200 emoji and refuse 201", () => {
    expect(resourceFormSchema.safeParse({ ...form, title: EMOJI.repeat(200) }).success).toBe(true);
    expect(resourceFormSchema.safeParse({ ...form, title: EMOJI.repeat(201) }).success).toBe(false);
  });

  it("take names of 100 emoji and refuse 101", () => {
    expect(workspaceNameSchema.safeParse({ name: EMOJI.repeat(100) }).success).toBe(true);
    expect(workspaceNameSchema.safeParse({ name: EMOJI.repeat(101) }).success).toBe(false);
    expect(profileSchema.safeParse({ display_name: EMOJI.repeat(100) }).success).toBe(true);
    expect(profileSchema.safeParse({ display_name: EMOJI.repeat(101) }).success).toBe(false);
  });

  it("refuse a password of 5 emoji (10 UTF-16 units) as under 10 characters", () => {
    expect(newPassword.safeParse(EMOJI.repeat(5)).success).toBe(false);
    expect(newPassword.safeParse(EMOJI.repeat(10)).success).toBe(true);
    expect(newPassword.safeParse(EMOJI.repeat(256)).success).toBe(true);
    expect(newPassword.safeParse(EMOJI.repeat(257)).success).toBe(false);
  });
});
