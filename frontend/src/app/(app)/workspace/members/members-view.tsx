"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { LogOut, MailX, UserMinus } from "lucide-react";
import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useId, useState } from "react";
import { useForm } from "react-hook-form";
import { FormError } from "@/components/auth/auth-card";
import { FormField } from "@/components/form-field";
import { MissingParam } from "@/components/missing-param";
import { PageHeader } from "@/components/page-header";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { EmptyState, ErrorState, LoadMore, LoadingState } from "@/components/states";
import { useSearchParam } from "@/components/use-search-param";
import { useToast } from "@/components/toaster";
import { ConfirmDialog } from "@/components/ui/alert-dialog";
import { Alert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { Label } from "@/components/ui/label";
import { WorkspaceNav } from "@/components/workspace-nav";
import { WORKSPACE_ROLES, hasRole, workspacesFor, type InvitationPublic, type MemberAdded, type MemberPublic, type WorkspaceRole } from "@/lib/api/workspaces";
import { describeError } from "@/lib/error-messages";
import { orMade } from "@/lib/errors";
import { applyServerErrors } from "@/lib/forms";
import {
  dropInvitation,
  dropMember,
  setInvitation,
  setMember,
  useInvitationsQuery,
  useMembersQuery,
  usePager,
  useWorkspaceLive,
  useWorkspaceQuery,
  workspaceKeys,
} from "@/lib/queries";
import { getServices } from "@/lib/services";
import { memberInviteSchema, type MemberInviteInput } from "@/lib/validations/workspaces";

const api = () => workspacesFor(getServices().api);

const selectClass =
  "h-9 rounded-md border border-input bg-transparent px-2 text-sm outline-none focus-visible:ring-2 focus-visible:ring-ring disabled:opacity-50 dark:bg-background";

/** `/workspace/members/?id=`: members with roles, add/invite, re-role, remove, leave, pending invitations (revoke); live on `workspace:<id>`. */
export function MembersView() {
  const id = useSearchParam("id");
  if (!id) return <MissingParam what="workspace" />;
  return <Members key={id} workspaceId={id} />;
}

function Members({ workspaceId }: { workspaceId: string }) {
  const me = useSessionStore((s) => s.user);
  const toast = useToast();
  const router = useRouter();
  const client = useQueryClient();
  const [actionError, setActionError] = useState<string | null>(null);
  const [gone, setGone] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  // The channel puts every event into the cache (members, invitations, the
  // workspace's name and my role); the page only reacts to losing access.
  const live = useWorkspaceLive(gone ? null : workspaceId, {
    me: me?.id ?? null,
    onEvent(event) {
      if (event.type === "member.removed" && event.data.user_id === me?.id && event.data.workspace_id === workspaceId) {
        setGone("You are no longer a member of this workspace.");
      } else if (event.type === "workspace.deleted" && event.data.id === workspaceId) {
        setGone("This workspace was deleted.");
      }
    },
    onUnsubscribed() {
      setGone("You no longer have access to this workspace.");
    },
  });
  // Read once the subscription stands; after losing access (no channel, not
  // ready) the queries stop and what was read stays shown.
  const enabled = live.ready;
  const workspaceQuery = useWorkspaceQuery(workspaceId, { enabled });
  const membersQuery = useMembersQuery(workspaceId, { enabled });
  const invitationsQuery = useInvitationsQuery(workspaceId, { enabled });
  const workspace = workspaceQuery.data;
  const members = membersQuery.items;
  const membersPager = usePager(membersQuery, "members");
  const invitationsPager = usePager(invitationsQuery, "pending invitations");
  const channel = live.channel;

  const role = workspace?.role ?? null;
  const isAdmin = hasRole(role, "admin");
  const title = workspace?.name ? `Members · ${workspace.name}` : "Members";

  async function changeRole(member: MemberPublic, next: WorkspaceRole) {
    setBusy(member.user_id);
    setActionError(null);
    try {
      // Made but unanswered (too_large, applied): done; the row shows our copy with the new role.
      const saved = await orMade(api().updateMember(workspaceId, member.user_id, { role: next }), () => ({ ...member, role: next }));
      setMember(client, workspaceId, saved);
      toast({ title: "Role changed", description: `${saved.email} is now ${saved.role}.` });
    } catch (e) {
      setActionError(`Could not change the role of ${member.email}: ${describeError(e)}`);
    } finally {
      setBusy(null);
    }
  }

  async function remove(member: MemberPublic) {
    setBusy(member.user_id);
    setActionError(null);
    try {
      await orMade(api().removeMember(workspaceId, member.user_id), () => undefined);
      dropMember(client, workspaceId, member.user_id);
      toast({ title: "Member removed", description: member.email });
    } catch (e) {
      setActionError(`Could not remove ${member.email}: ${describeError(e)}`);
    } finally {
      setBusy(null);
    }
  }

  async function revoke(invitation: InvitationPublic) {
    setBusy(invitation.id);
    setActionError(null);
    try {
      await orMade(api().revokeInvitation(workspaceId, invitation.id), () => undefined);
      dropInvitation(client, workspaceId, { id: invitation.id, email: invitation.email });
      toast({ title: "Invitation revoked", description: invitation.email });
    } catch (e) {
      setActionError(`Could not revoke the invitation of ${invitation.email}: ${describeError(e)}`);
    } finally {
      setBusy(null);
    }
  }

  async function leave() {
    setBusy("leave");
    setActionError(null);
    try {
      await orMade(api().leave(workspaceId), () => undefined);
      toast({ title: "You left the workspace", description: workspace?.name });
      router.push("/workspaces/");
    } catch (e) {
      setActionError(`Could not leave: ${describeError(e)}`);
      setBusy(null);
    }
  }

  if (workspaceQuery.isError && !workspace) {
    return (
      <>
        <PageHeader title="Members" />
        <ErrorState title="Could not open this workspace" error={workspaceQuery.error} onRetry={() => void workspaceQuery.refetch()} />
      </>
    );
  }

  return (
    <>
      <PageHeader
        title={title}
        description="Who can see and change this workspace."
        actions={
          role && !gone ? (
            <ConfirmDialog
              trigger={
                <Button variant="outline" disabled={busy === "leave"}>
                  <LogOut aria-hidden="true" /> Leave
                </Button>
              }
              title="Leave this workspace?"
              description="You lose access until someone adds you again. A workspace always keeps an owner."
              confirmLabel="Leave"
              onConfirm={() => void leave()}
            />
          ) : null
        }
      />
      <WorkspaceNav workspaceId={workspaceId} />
      <div className="grid gap-4">
        {gone ? (
          <Alert variant="destructive" data-testid="members-gone">
            {gone}
          </Alert>
        ) : null}
        {actionError ? (
          <Alert variant="destructive" data-testid="members-error">
            {actionError}
          </Alert>
        ) : null}
        {isAdmin && !gone ? (
          <AddMemberForm
            workspaceId={workspaceId}
            canGrantOwner={role === "owner"}
            onInvited={(i) => setInvitation(client, workspaceId, i)}
            onMadeUnanswered={() => void client.invalidateQueries({ queryKey: workspaceKeys.invitations(workspaceId) })}
          />
        ) : null}

        {!membersQuery.data && !membersQuery.isError ? <LoadingState label="Loading members…" /> : null}
        {membersQuery.isError && !membersQuery.data ? (
          <ErrorState title="Could not load the members" error={membersQuery.error} onRetry={() => void membersQuery.refetch()} />
        ) : null}
        {membersQuery.data && members.length === 0 ? <EmptyState title="No members" /> : null}
        {members.length > 0 ? (
          <Card className="overflow-x-auto p-0">
            <table className="w-full text-sm" aria-label="Members" data-live={channel.status}>
              <thead className="border-b border-border text-left text-muted-foreground">
                <tr>
                  <th scope="col" className="px-4 py-2 font-medium">
                    Member
                  </th>
                  <th scope="col" className="px-4 py-2 font-medium">
                    Role
                  </th>
                  <th scope="col" className="px-4 py-2 font-medium">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {members.map((member) => (
                  <MemberRow
                    key={member.user_id}
                    member={member}
                    isMe={member.user_id === me?.id}
                    myRole={gone ? null : role}
                    busy={busy === member.user_id}
                    onRole={(next) => void changeRole(member, next)}
                    onRemove={() => void remove(member)}
                  />
                ))}
              </tbody>
            </table>
          </Card>
        ) : null}
        {members.length > 0 && !gone ? (
          <div data-testid="members-more">
            <LoadMore pages={membersPager} />
          </div>
        ) : null}
        {!gone ? (
          <PendingInvitations
            query={invitationsQuery}
            pager={invitationsPager}
            myRole={role}
            busyId={busy}
            onRevoke={(invitation) => void revoke(invitation)}
          />
        ) : null}
      </div>
    </>
  );
}

/** Pending invitations (any member sees them, as the activity feed shows them); admins revoke. */
function PendingInvitations({
  query,
  pager,
  myRole,
  busyId,
  onRevoke,
}: {
  query: ReturnType<typeof useInvitationsQuery>;
  pager: ReturnType<typeof usePager>;
  myRole: WorkspaceRole | null;
  busyId: string | null;
  onRevoke: (invitation: InvitationPublic) => void;
}) {
  const items = query.items;
  if (query.isError && !query.data) {
    return <ErrorState title="Could not load the pending invitations" error={query.error} onRetry={() => void query.refetch()} />;
  }
  if (items.length === 0) return null;
  return (
    <section aria-labelledby="pending-invitations" className="grid gap-2">
      <h2 id="pending-invitations" className="text-base font-semibold">
        Pending invitations
      </h2>
      <Card className="overflow-x-auto p-0">
        <ul aria-label="Pending invitations" className="divide-y divide-border text-sm">
          {items.map((invitation) => {
            // Admins revoke; only an owner revokes an invitation to the owner role.
            const mayRevoke = hasRole(myRole, "admin") && (myRole === "owner" || invitation.role !== "owner");
            return (
              <li
                key={invitation.id}
                className="flex flex-wrap items-center gap-3 px-4 py-3"
                data-testid="invitation-row"
                data-email={invitation.email}
              >
                <span className="font-medium">{invitation.email}</span>
                <Badge variant="secondary">{invitation.role}</Badge>
                <span className="text-muted-foreground">expires {new Date(invitation.expires_at).toLocaleDateString()}</span>
                {mayRevoke ? (
                  <span className="ml-auto">
                    <ConfirmDialog
                      trigger={
                        <Button variant="ghost" size="sm" disabled={busyId === invitation.id} aria-label={`Revoke the invitation of ${invitation.email}`}>
                          <MailX aria-hidden="true" /> Revoke
                        </Button>
                      }
                      title={`Revoke the invitation of ${invitation.email}?`}
                      description="The link in the invitation mail stops working. You can invite the address again later."
                      confirmLabel="Revoke"
                      onConfirm={() => onRevoke(invitation)}
                    />
                  </span>
                ) : null}
              </li>
            );
          })}
        </ul>
      </Card>
      <div data-testid="invitations-more">
        <LoadMore pages={pager} />
      </div>
    </section>
  );
}

function MemberRow({
  member,
  isMe,
  myRole,
  busy,
  onRole,
  onRemove,
}: {
  member: MemberPublic;
  isMe: boolean;
  myRole: WorkspaceRole | null;
  busy: boolean;
  onRole: (role: WorkspaceRole) => void;
  onRemove: () => void;
}) {
  const isAdmin = hasRole(myRole, "admin");
  // Only an owner grants, changes or takes away the owner role.
  const editable = isAdmin && (myRole === "owner" || member.role !== "owner");
  const choices = WORKSPACE_ROLES.filter((r) => r !== "owner" || myRole === "owner");
  return (
    <tr className="border-b border-border last:border-0" data-testid="member-row" data-email={member.email} data-role={member.role}>
      <td className="px-4 py-3">
        <div className="flex flex-wrap items-center gap-2">
          <span className="font-medium">{member.display_name}</span>
          {isMe ? <Badge variant="outline">You</Badge> : null}
        </div>
        <div className="text-muted-foreground">{member.email}</div>
      </td>
      <td className="px-4 py-3">
        {editable ? (
          <select
            aria-label={`Role of ${member.email}`}
            className={selectClass}
            value={member.role}
            disabled={busy}
            onChange={(e) => onRole(e.target.value as WorkspaceRole)}
          >
            {choices.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        ) : (
          <Badge variant="secondary" data-testid="member-role">
            {member.role}
          </Badge>
        )}
      </td>
      <td className="px-4 py-3 text-right">
        {editable && !isMe ? (
          <ConfirmDialog
            trigger={
              <Button variant="ghost" size="sm" disabled={busy} aria-label={`Remove ${member.email}`}>
                <UserMinus aria-hidden="true" /> Remove
              </Button>
            }
            title={`Remove ${member.display_name}?`}
            description={`${member.email} loses access to this workspace at once.`}
            confirmLabel="Remove"
            onConfirm={onRemove}
          />
        ) : null}
      </td>
    </tr>
  );
}

type Outcome = { email: string; role: WorkspaceRole; expires?: string };

/**
 * Adding someone is always an invitation (the hub never makes an account a member
 * without its consent): they join when they accept the mailed link, signed in with
 * that address, verified. The answer is the same whether or not the email has an account.
 */
function AddMemberForm({
  workspaceId,
  canGrantOwner,
  onInvited,
  onMadeUnanswered,
}: {
  workspaceId: string;
  canGrantOwner: boolean;
  onInvited: (invitation: InvitationPublic) => void;
  /** The hub made the invitation but could not send it back (too_large, details.applied). */
  onMadeUnanswered: () => void;
}) {
  const roleId = useId();
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const form = useForm<MemberInviteInput>({ resolver: zodResolver(memberInviteSchema), defaultValues: { email: "", role: "member" } });
  const { errors, isSubmitting } = form.formState;

  const add = form.handleSubmit(async (values) => {
    setOutcome(null);
    try {
      // Made but unanswered (too_large, applied): invited all the same; the pending list is read again.
      const added = await orMade<MemberAdded | null>(api().addMember(workspaceId, values), () => null);
      if (added) onInvited(added.invitation);
      else onMadeUnanswered();
      const invitation = added?.invitation;
      setOutcome({ email: invitation?.email ?? values.email, role: invitation?.role ?? values.role, expires: invitation?.expires_at });
      form.reset({ email: "", role: values.role });
    } catch (e) {
      applyServerErrors(e, form.setError, ["email", "role"]);
    }
  });

  return (
    <Card className="p-4">
      <form noValidate onSubmit={add} aria-label="Add a member" className="grid gap-3 md:grid-cols-[1fr_auto_auto] md:items-start">
        <FormField label="Email" type="email" autoComplete="off" error={errors.email} {...form.register("email")} />
        <div className="grid gap-2">
          <Label htmlFor={roleId}>Role</Label>
          <select id={roleId} className={selectClass} {...form.register("role")}>
            {WORKSPACE_ROLES.filter((r) => r !== "owner" || canGrantOwner).map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div className="flex flex-wrap gap-2 md:pt-7">
          <Button type="submit" disabled={isSubmitting}>
            Add member
          </Button>
        </div>
        <div className="md:col-span-3">
          <FormError message={errors.root?.server?.message} />
          {outcome ? (
            <p role="status" data-testid="add-outcome" data-outcome="invited" className="text-sm">
              {`Invitation sent to ${outcome.email} (${outcome.role}): they join when they accept it.`}
              {outcome.expires ? ` It expires ${new Date(outcome.expires).toLocaleDateString()}.` : ""}
            </p>
          ) : null}
        </div>
      </form>
    </Card>
  );
}
