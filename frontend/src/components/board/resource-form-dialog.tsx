"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useId, useMemo, useState, type ReactNode } from "react";
import { useForm, type Path } from "react-hook-form";
import { FormError } from "@/components/auth/auth-card";
import { FormField } from "@/components/form-field";
import { Button } from "@/components/ui/button";
import { Label } from "@/components/ui/label";
import type { Resource, ResourceCreateInput } from "@/lib/api/resources";
import { applyEdit, createdUnseen, madeAnyway, savedUnseen } from "@/lib/board/actions";
import type { BoardAction } from "@/lib/board/store";
import { DEFAULT_STATUSES, statusLabel } from "@/lib/board/store";
import { draftOf } from "@/lib/board/drafts";
import {
  RESOURCE_FORM_FIELDS,
  formDefaults,
  resourceFormSchemaFor,
  toCreateBody,
  toPatch,
  type ResourceFormInput,
  type ResourceFormValues,
} from "@/lib/board/schema";
import { describeError } from "@/lib/error-messages";
import { HubError, fieldErrorMap } from "@/lib/errors";
import { getServices } from "@/lib/services";
import { useToast } from "../toaster";
import { applyServerErrors } from "@/lib/forms";
import { Dialog, DialogContent, DialogTitle, NativeSelect } from "./dialog";
import type { Editor } from "./use-live-resources";
import { useResourceApis } from "./use-live-resources";

/** `tags.3` (one bad tag) → the tags field. */
function putServerErrors(error: unknown, setError: Parameters<typeof applyServerErrors<ResourceFormInput>>[1]) {
  const aliases: Record<string, Path<ResourceFormInput>> = {};
  if (error instanceof HubError) {
    for (const key of Object.keys(fieldErrorMap(error))) if (key.startsWith("tags.")) aliases[key] = "tags";
  }
  applyServerErrors<ResourceFormInput>(error, setError, RESOURCE_FORM_FIELDS, { aliases });
}

export type ResourceDialogProps =
  | {
      mode: "create";
      open: boolean;
      onOpenChange: (open: boolean) => void;
      workspaceId: string;
      dispatch: (action: BoardAction) => void;
      /** The board's columns, for the Column select. */
      statuses?: string[];
      initialStatus?: string;
      onCreated?: (resource: Resource) => void;
      /**
       * Where a card created offline is drawn in `status` until it is sent (the board's
       * column end as shown); its create sends that position, so cards moved next to it
       * meanwhile keep their side of it on the hub.
       */
      draftPosition?: (status: string) => string;
    }
  | {
      mode: "edit";
      open: boolean;
      onOpenChange: (open: boolean) => void;
      workspaceId: string;
      dispatch: (action: BoardAction) => void;
      statuses?: string[];
      /** The resource as the server last said (not the local overlay). */
      resource: Resource;
      editor: Editor;
    };

/** Create or edit a resource: React Hook Form + Zod, the hub's 422s on their fields, conflicts shown in place. */
export function ResourceDialog(props: ResourceDialogProps) {
  const title = props.mode === "create" ? "New card" : "Edit card";
  return (
    <Dialog open={props.open} onOpenChange={props.onOpenChange}>
      <DialogContent aria-describedby={undefined}>
        <DialogTitle>{title}</DialogTitle>
        {/* Mounted per opening: an edit is based on the version shown when the dialog opened. */}
        {props.open ? <ResourceForm {...props} /> : null}
      </DialogContent>
    </Dialog>
  );
}

function ResourceForm(props: ResourceDialogProps) {
  const apis = useResourceApis();
  const toast = useToast();
  const ids = { status: useId(), kind: useId(), body: useId() };
  const opened = props.mode === "edit" ? props.resource : undefined;
  const [base, setBase] = useState<Resource | undefined>(opened);
  const [conflict, setConflict] = useState<Resource | null>(null);
  // One key per opening of the create form: a retry after a lost reply creates one resource.
  const [createKey] = useState(() => crypto.randomUUID());
  // The requests sent with createKey, by the form's fields each was made of.
  const [sentWithKey] = useState(() => new Map<string, ResourceCreateInput>());
  // Those of them the hub may have applied (unanswered, or answered with an error that does not say it was
  // refused), by their JSON: one of them at most holds the key, and sent again it answers its card.
  const [unsettled] = useState(() => new Map<string, ResourceCreateInput>());

  /**
   * A create refused because the hub applied another request under createKey (its reply was lost, then the
   * form changed): send the earlier requests again, each answered with its stored reply if it is the one
   * applied, else refused the same. The card found is shown (`show`); the form's `values`, where they differ
   * from it, go as an edit of it at its version. A toast says what could not be done; `retry`: an earlier
   * request failed for a reason that passes (nothing is known yet, saving again asks again).
   */
  const adoptEarlier = async (
    values: ResourceFormValues,
    show: (created: Resource | undefined) => void,
  ): Promise<{ kind: "done" } | { kind: "retry"; error: unknown; title: string | null }> => {
    const { workspaceId, dispatch } = props;
    const earlier = [...unsettled.values()];
    const titles = new Set(earlier.map((body) => body.title));
    const title = titles.size === 1 ? earlier[0]!.title : null;
    for (const body of earlier) {
      let created: Resource;
      try {
        created = await apis.rpc.create(workspaceId, body, { idempotencyKey: createKey });
      } catch (error) {
        if (madeAnyway(error)) {
          show(undefined);
          toast({ pageOnly: true, ...earlierMade(body.title, createdUnseen(body.title).description) });
          return { kind: "done" };
        }
        if (refused(error)) {
          unsettled.delete(JSON.stringify(body));
          continue;
        }
        return { kind: "retry", error, title };
      }
      unsettled.clear();
      show(created);
      if (props.mode === "create") props.onCreated?.(created);
      const patch = toPatch(created, values);
      if (Object.keys(patch).length === 0) return { kind: "done" };
      const outcome = await applyEdit({ api: apis.rpc, dispatch, workspaceId }, created.id, patch, created.version);
      if (outcome.kind === "applied") toast({ pageOnly: true, ...savedUnseen() });
      else if (outcome.kind === "conflict") toast({ pageOnly: true, ...earlierMade(created.title, "Someone else changed it first: your changes wait on the card.") });
      else if (outcome.kind === "failed") toast({ pageOnly: true, ...earlierMade(created.title, describeError(outcome.error)) });
      return { kind: "done" };
    }
    show(undefined);
    toast({ pageOnly: true, ...earlierMade(title) });
    return { kind: "done" };
  };

  // Editing: the title as `base` has it is not held to the one-line rule (it is not sent unless changed).
  const schema = useMemo(() => resourceFormSchemaFor(base), [base]);
  const form = useForm<ResourceFormInput, unknown, ResourceFormValues>({
    resolver: zodResolver(schema),
    defaultValues: formDefaults(opened, props.mode === "create" ? props.initialStatus : undefined),
  });
  const { errors, isSubmitting } = form.formState;

  const onSubmit = form.handleSubmit(async (values) => {
    const live = realtimeIsLive();
    if (props.mode === "create") {
      const plain = toCreateBody(values);
      const asked = JSON.stringify(plain);
      // Saved again as it was (after a failure: a lost reply, a timeout): exactly the request sent before with
      // this key, its place or none, online or not. Another place would be another request, which the hub
      // refuses under a key it has applied (422), though the card was made. Saved with other values, it goes
      // with this key too (a new one would make a second card); should the hub refuse it so, `adoptEarlier`.
      const again = sentWithKey.get(asked);
      const status = plain.status ?? "open";
      const drafted = again ?? (!live && props.draftPosition ? { ...plain, position: props.draftPosition(status) } : plain);
      // Too large for a socket frame, it goes over REST at once, not through the outbox: the form waits for it.
      const queued = !live && apis.rpc.fits.create(props.workspaceId, drafted, { idempotencyKey: createKey });
      const body = again ?? (queued ? drafted : plain);
      sentWithKey.set(asked, body);
      const sent = JSON.stringify(body);
      unsettled.set(sent, body);
      const call = apis.rpc.create(props.workspaceId, body, { idempotencyKey: createKey });
      if (queued) {
        // Offline: the card shows at once as not sent yet; the outbox sends it when the connection is back.
        // Sent without a place (as before), it is drawn at its column's end, where the hub puts it.
        const { dispatch, workspaceId, onCreated } = props;
        const position = body.position ?? props.draftPosition?.(status);
        dispatch({ type: "draftAdded", draft: draftOf(createKey, workspaceId, position === undefined ? body : { ...body, position }) });
        props.onOpenChange(false);
        const settle = (created: Resource | undefined) => dispatch({ type: "draftSettled", draftId: createKey, resource: created });
        call.then(
          (created) => {
            settle(created);
            onCreated?.(created);
          },
          async (error: unknown) => {
            if (refused(error)) unsettled.delete(sent);
            if (error instanceof HubError && error.keyUsedForOther && unsettled.size > 0) {
              // An earlier save under this key was made (its reply lost): that card, not this draft, is the one.
              const outcome = await adoptEarlier(values, settle);
              if (outcome.kind === "retry") {
                settle(undefined);
                toast({ pageOnly: true, ...earlierMade(outcome.title, describeError(outcome.error)) });
              }
              return;
            }
            settle(undefined);
            if (madeAnyway(error)) toast({ pageOnly: true, ...createdUnseen(body.title) });
            else toast({ pageOnly: true, title: `“${body.title}” was not created`, description: describeError(error), variant: "destructive" });
          },
        );
        return;
      }
      try {
        const created = await call;
        props.dispatch({ type: "upsert", resource: created });
        props.onCreated?.(created);
        props.onOpenChange(false);
      } catch (error) {
        if (refused(error)) unsettled.delete(sent);
        if (madeAnyway(error)) {
          toast({ pageOnly: true, ...createdUnseen(body.title) });
          props.onOpenChange(false);
          return;
        }
        if (error instanceof HubError && error.keyUsedForOther && unsettled.size > 0) {
          // An earlier save under this key was made (its reply lost), then the form changed: take that card.
          const outcome = await adoptEarlier(values, (created) => created && props.dispatch({ type: "upsert", resource: created }));
          if (outcome.kind === "done") props.onOpenChange(false);
          else putServerErrors(outcome.error, form.setError);
          return;
        }
        putServerErrors(error, form.setError);
        if (!live && unreachable(error)) form.setError("root.server", { type: "offline", message: TOO_LARGE_OFFLINE });
      }
      return;
    }
    const current = base!;
    const patch = toPatch(current, values);
    if (Object.keys(patch).length === 0) {
      if (conflict) props.dispatch({ type: "conflictResolved", id: current.id });
      props.onOpenChange(false);
      return;
    }
    if (!live && apis.rpc.fits.update(props.workspaceId, current.id, current.version, patch)) {
      // Offline: the card shows the change as not sent yet; a refusal comes back on the card (conflict) or as a toast.
      void props.editor(current.id, patch, current.version);
      props.onOpenChange(false);
      return;
    }
    // Live, or too large for a socket frame (over REST at once, not queued): the form waits for the answer.
    const outcome = await props.editor(current.id, patch, current.version, { quiet422: true, quietUnreachable: !live });
    if (outcome.kind === "saved" || outcome.kind === "applied") {
      props.onOpenChange(false);
    } else if (outcome.kind === "conflict") {
      // Show theirs; saving again now overwrites it (If-Match: their version).
      setConflict(outcome.current);
      setBase(outcome.current);
    } else if ((outcome.error as { status?: number })?.status === 422) {
      putServerErrors(outcome.error, form.setError);
    } else if (!live && unreachable(outcome.error)) {
      form.setError("root.server", { type: "offline", message: TOO_LARGE_OFFLINE });
    }
  });

  function discard() {
    if (base) props.dispatch({ type: "conflictResolved", id: base.id });
    props.onOpenChange(false);
  }

  return (
    <form noValidate className="grid gap-4" aria-label={props.mode === "create" ? "New card" : "Edit card"} onSubmit={onSubmit}>
      {conflict ? <ConflictAlert current={conflict} /> : null}
      <FormError message={errors.root?.server?.message} />
      <FormField label="Title" autoComplete="off" error={errors.title} {...form.register("title")} />
      <div className="grid gap-4 sm:grid-cols-2">
        <div className="grid gap-2">
          <Label htmlFor={ids.status}>Column</Label>
          <NativeSelect id={ids.status} className="w-full" aria-invalid={errors.status ? true : undefined} {...form.register("status")}>
            {withCurrent(props.statuses ?? [...DEFAULT_STATUSES], opened?.status ?? (props.mode === "create" ? props.initialStatus : undefined)).map((s) => (
              <option key={s} value={s}>
                {statusLabel(s)}
              </option>
            ))}
          </NativeSelect>
          {errors.status?.message ? <p className="text-sm text-destructive">{errors.status.message}</p> : null}
        </div>
        <div className="grid gap-2">
          <Label htmlFor={ids.kind}>Type</Label>
          <NativeSelect id={ids.kind} className="w-full" aria-invalid={errors.kind ? true : undefined} {...form.register("kind")}>
            {withCurrent([...KINDS], opened?.kind).map((k) => (
              <option key={k} value={k}>
                {statusLabel(k)}
              </option>
            ))}
          </NativeSelect>
          {errors.kind?.message ? <p className="text-sm text-destructive">{errors.kind.message}</p> : null}
        </div>
      </div>
      <FormField label="Tags" autoComplete="off" hint="Separated by commas or spaces" error={errors.tags} {...form.register("tags")} />
      <div className="grid gap-2">
        <Label htmlFor={ids.body}>Description</Label>
        <textarea
          id={ids.body}
          rows={5}
          aria-invalid={errors.body ? true : undefined}
          aria-describedby={errors.body ? `${ids.body}-error` : undefined}
          className="min-h-24 w-full rounded-md border border-input bg-transparent px-3 py-2 text-sm shadow-xs outline-none focus-visible:ring-2 focus-visible:ring-ring aria-invalid:border-destructive"
          {...form.register("body")}
        />
        {errors.body?.message ? (
          <p id={`${ids.body}-error`} className="text-sm text-destructive">
            {errors.body.message}
          </p>
        ) : null}
      </div>
      <div className="flex flex-wrap justify-end gap-2">
        {conflict ? (
          <Button type="button" variant="outline" onClick={discard}>
            Discard mine
          </Button>
        ) : (
          <Button type="button" variant="outline" onClick={() => props.onOpenChange(false)}>
            Cancel
          </Button>
        )}
        <Button type="submit" disabled={isSubmitting}>
          {isSubmitting ? "Saving…" : conflict ? "Overwrite with mine" : props.mode === "create" ? "Create" : "Save"}
        </Button>
      </div>
    </form>
  );
}

function ConflictAlert({ current }: { current: Resource }) {
  return (
    <div role="alert" data-testid="conflict" className="grid gap-1 rounded-md border border-amber-500/50 bg-amber-500/10 px-3 py-2 text-sm">
      <p className="font-medium">Someone else changed this while you were editing.</p>
      <p className="text-muted-foreground">
        Now (version {current.version}): <ConflictSummary resource={current} />
      </p>
      <p className="text-muted-foreground">Save again to overwrite it with your version, or discard your changes.</p>
    </div>
  );
}

export function ConflictSummary({ resource }: { resource: Resource }): ReactNode {
  return (
    <>
      <span data-testid="conflict-current-title" className="font-medium text-foreground">
        “{resource.title}”
      </span>
      , {statusLabel(resource.status).toLowerCase()}
      {resource.deleted_at ? ", deleted" : ""}
    </>
  );
}

/** Types of card offered in the form (a card of another type keeps its own). */
const KINDS = ["task", "bug", "idea", "note"] as const;

function withCurrent(values: string[], current: string | undefined): string[] {
  return current && !values.includes(current) ? [...values, current] : values;
}

/** Said when a change too large to wait in the outbox could not be sent: offline, nothing keeps it but the open form. */
const TOO_LARGE_OFFLINE =
  "The server cannot be reached. This change is too large to keep until the connection is back: it can be saved once you are online (keep this dialog open and save again).";

/** The hub answered that it did not make the request (anything else may have been made: no answer, a 5xx). */
function refused(error: unknown): boolean {
  return error instanceof HubError && !error.local && !error.retryable && !error.applied;
}

/** What to tell when an earlier save of the create form made the card, and the form's later values were not applied to it. */
function earlierMade(title: string | null, why?: string): { title: string; description: string; variant: "destructive" } {
  return {
    title: title === null ? "Your earlier save created the card" : `Your earlier save created “${title}”`,
    description: why ? `Your changes were not applied. ${why}` : "Your changes were not applied.",
    variant: "destructive",
  };
}

/** No answer from the server (the browser is offline, or the hub is down). */
function unreachable(error: unknown): boolean {
  return error instanceof HubError && error.local && error.code === "unavailable";
}

function realtimeIsLive(): boolean {
  return getServices().realtime.state === "live";
}
