import type { components } from "./api/schema";
import type { HubEvent, UserPublic } from "./api/types";
import { endSentence } from "./error-messages";

type MemberPublic = components["schemas"]["MemberPublic"];
type WorkspacePublic = Pick<components["schemas"]["MyWorkspace"], "id" | "name">;

export interface Notice {
  title: string;
  description?: string;
}

const ROLE_WORDS: Record<string, string> = {
  owner: "an owner",
  admin: "an admin",
  member: "a member",
  viewer: "a viewer",
};

/**
 * What a toast says for an event on the signed-in user's own channel
 * (`user:<id>`, docs/domain.md), or null when there is nothing to tell:
 * the user's own action, already shown where it was made.
 */
export function describeEvent(event: HubEvent, before: UserPublic | null, me: string | undefined): Notice | null {
  const byMe = event.actor != null && event.actor === me;
  switch (event.type) {
    case "user.updated": {
      const after = event.data as unknown as UserPublic;
      if (before && after.role !== before.role) {
        return { title: "Your role changed", description: after.role === "admin" ? "You are now an administrator." : "You are now a member." };
      }
      if (before && after.display_name !== before.display_name) {
        return {
          title: "Profile updated",
          // The name is the user's text: "Ann B." must not end in "..".
          description: endSentence(!byMe && event.actor ? `An administrator renamed you to ${after.display_name}` : `Your name is now ${after.display_name}`),
        };
      }
      return null;
    }
    case "member.added": {
      if (byMe) return null;
      const member = event.data as unknown as MemberPublic;
      return { title: "You were added to a workspace", description: `You are ${ROLE_WORDS[member.role] ?? member.role} of it. Find it under Workspaces.` };
    }
    case "member.updated": {
      if (byMe) return null;
      const member = event.data as unknown as MemberPublic;
      return { title: "Your workspace role changed", description: `You are now ${ROLE_WORDS[member.role] ?? member.role} of the workspace.` };
    }
    case "member.removed":
      return byMe ? null : { title: "You were removed from a workspace" };
    case "workspace.deleted": {
      if (byMe) return null;
      const workspace = event.data as unknown as WorkspacePublic;
      return { title: "A workspace was deleted", description: `“${workspace.name}” no longer exists.` };
    }
    default:
      return { title: "Notification", description: event.type };
  }
}
