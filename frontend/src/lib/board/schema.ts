import { z } from "zod";
import type { Resource, ResourceCreateInput, ResourcePatch } from "../api/resources";
import { oneLine } from "../validations/one-line";

/**
 * The resource form (create and edit). The hub's rules (docs/domain.md,
 * Validation) stay authoritative; these catch the obvious before a round trip.
 */

const WORD = /^[a-z][a-z0-9_-]{0,31}$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$/;

/** "a, b c" → ["a", "b", "c"] (repeats dropped, like the hub does). */
export function parseTags(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

/**
 * The form's schema; editing `current`, its title left unchanged is not held
 * to the one-line rule ({@link toPatch} leaves it out, so the hub does not
 * check it: a title stored before the rule does not block a change of status).
 */
export function resourceFormSchemaFor(current?: Resource) {
  return z.object({
    title: oneLine(200, "Enter a title", current?.title),
    kind: z.string().trim().regex(WORD, "A lower-case word, e.g. task"),
    status: z.string().trim().regex(WORD, "A lower-case word, e.g. open"),
    tags: z
      .string()
      .refine((v) => parseTags(v).length <= 20, "At most 20 tags")
      .refine((v) => parseTags(v).every((t) => TAG.test(t)), "Tags are letters, digits and _ . : - (up to 40, starting with a letter or digit)"),
    body: z.string().max(100_000, "At most 100,000 characters"),
  });
}

/** The create form's schema (every field checked). */
export const resourceFormSchema = resourceFormSchemaFor();

export type ResourceFormInput = z.input<typeof resourceFormSchema>;
export type ResourceFormValues = z.output<typeof resourceFormSchema>;

export const RESOURCE_FORM_FIELDS = ["title", "kind", "status", "tags", "body"] as const;

export function formDefaults(resource?: Resource, status = "open"): ResourceFormInput {
  return {
    title: resource?.title ?? "",
    kind: resource?.kind ?? "task",
    status: resource?.status ?? status,
    tags: resource?.tags.join(", ") ?? "",
    body: resource?.body ?? "",
  };
}

export function toCreateBody(values: ResourceFormValues): ResourceCreateInput {
  return { title: values.title, kind: values.kind, status: values.status, tags: parseTags(values.tags), body: values.body };
}

/** Only what changed (a PATCH must change something; `null` is refused). */
export function toPatch(resource: Resource, values: ResourceFormValues): ResourcePatch {
  const patch: ResourcePatch = {};
  if (values.title !== resource.title) patch.title = values.title;
  if (values.kind !== resource.kind) patch.kind = values.kind;
  if (values.status !== resource.status) patch.status = values.status;
  if (values.body !== resource.body) patch.body = values.body;
  const tags = parseTags(values.tags);
  if (JSON.stringify(tags) !== JSON.stringify(resource.tags)) patch.tags = tags;
  return patch;
}
