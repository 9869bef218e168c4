import { z } from "zod";
import { email } from "./auth";

/**
 * The workspace forms. The hub's rules stay authoritative (422 names the
 * field, and the form shows it there); these catch the obvious first.
 * Names: 1–100 characters on one line, stripped (docs/domain.md).
 */
export const workspaceName = z
  .string()
  .trim()
  .min(1, "Enter a name")
  .max(100, "At most 100 characters")
  .refine((value) => !/[\u0000-\u001f\u007f]/.test(value), "One line, no control characters");

export const workspaceNameSchema = z.object({ name: workspaceName });
export type WorkspaceNameInput = z.infer<typeof workspaceNameSchema>;

export const workspaceRole = z.enum(["owner", "admin", "member", "viewer"]);

export const memberInviteSchema = z.object({ email, role: workspaceRole });
export type MemberInviteInput = z.infer<typeof memberInviteSchema>;
