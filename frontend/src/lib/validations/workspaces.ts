import { z } from "zod";
import { email } from "./auth";
import { oneLine } from "./one-line";

/**
 * The workspace forms. The hub's rules stay authoritative (422 names the
 * field, and the form shows it there); these catch the obvious first.
 * Names: 1–100 characters of visible text on one line, stripped (docs/domain.md).
 */
export const workspaceName = oneLine(100, "Enter a name");

export const workspaceNameSchema = z.object({ name: workspaceName });
export type WorkspaceNameInput = z.infer<typeof workspaceNameSchema>;

export const workspaceRole = z.enum(["owner", "admin", "member", "viewer"]);

export const memberInviteSchema = z.object({ email, role: workspaceRole });
export type MemberInviteInput = z.infer<typeof memberInviteSchema>;
