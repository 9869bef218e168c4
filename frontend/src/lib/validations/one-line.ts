import { z } from "zod";

/**
 * One line of visible text: resource titles, workspace names and display names,
 * by the hub's rule (hubbub/contracts/api/common.py, docs/domain.md Validation),
 * so that what the hub would answer with a 422 on the field is refused here.
 *
 * Refused anywhere: control characters (C0 and C1), line and paragraph
 * separators (U+2028, U+2029) and the format characters that hide or reorder
 * text: soft hyphen, U+180E, zero-width space, bidi embeddings, overrides and
 * isolates, word joiner and invisible operators, byte order mark, interlinear
 * annotation. The joiners (U+200C/U+200D), direction marks and emoji tag
 * characters stay: they belong in emoji sequences and in some scripts.
 *
 * And the text must show something: not only spaces, format characters,
 * fillers (U+3164), variation selectors, tags or the braille blank.
 *
 * The sets are spelled as the hub spells them; `LINE_PATTERN` is the pattern
 * the API documents state for these fields (openapi.json), and a test holds the
 * two equal. Characters above the BMP are in the pattern as themselves.
 */
const REFUSED =
  "\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u180e\\u200b\\u2028\\u2029\\u202a-\\u202e" +
  "\\u2060-\\u2064\\u2066-\\u206f\\ufeff\\ufff9-\\ufffb";
const SPACES = "\\u0020\\u00a0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000";
const INVISIBLE =
  "\\u034f\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891\\u08e2\\u115f\\u1160" +
  "\\u17b4\\u17b5\\u180b-\\u180f\\u200c-\\u200f\\u2800\\u3164\\ufe00-\\ufe0f\\uffa0" +
  "\u{110bd}\u{110cd}\u{13430}-\u{1343f}\u{1bca0}-\u{1bca3}" +
  "\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}";

export const LINE_PATTERN = `^[^${REFUSED}]*[^${REFUSED}${SPACES}${INVISIBLE}][^${REFUSED}]*$`;

// `u`: the classes are of code points, so a range above the BMP is one range.
const REFUSED_CHARACTER = new RegExp(`[${REFUSED}]`, "u");
const VISIBLE_CHARACTER = new RegExp(`[^${REFUSED}${SPACES}${INVISIBLE}]`, "u");

/** The first refused character, as `U+XXXX`, or null when there is none. */
export function refusedCharacter(value: string): string | null {
  const found = REFUSED_CHARACTER.exec(value)?.[0];
  if (found === undefined) return null;
  return `U+${(found.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Whether the text has a character that shows something on its own. */
export function showsSomething(value: string): boolean {
  return VISIBLE_CHARACTER.test(value);
}

/**
 * A title or name field: trimmed (what the form sends is the trimmed text),
 * `empty` when nothing is left, at most `max` characters (code points, as the
 * hub counts), one line, something visible.
 *
 * `stored`: the text the field edits, as the hub keeps it. Left as it is, it
 * is not checked by the one-line rule: an edit form sends only what changed,
 * so the hub does not check it either, and text stored before the rule (a
 * title with a zero-width space, say) must not stop a change of other fields.
 */
export function oneLine(max: number, empty: string, stored?: string) {
  return z
    .string()
    .trim()
    .min(1, empty)
    .max(max, `At most ${max} characters`)
    .superRefine((value, ctx) => {
      if (stored !== undefined && value === stored) return;
      const refused = refusedCharacter(value);
      if (refused !== null) {
        ctx.addIssue({
          code: "custom",
          message: `One line, without control or invisible formatting characters (${refused})`,
        });
      } else if (value && !showsSomething(value)) {
        ctx.addIssue({ code: "custom", message: "At least one visible character" });
      }
    });
}
