import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { resourceFormSchema } from "../../board/schema";
import { profileSchema, registerSchema } from "../auth";
import { LINE_PATTERN, refusedCharacter, showsSomething } from "../one-line";
import { workspaceNameSchema } from "../workspaces";

/**
 * Titles and names are one line of visible text, as the hub has them
 * (hubbub/contracts/api/common.py): the forms refuse what the hub would answer
 * with a 422 on the field. The examples are those of the hub's own tests
 * (tests/unit/test_one_line.py, tests/integration/test_resources.py and
 * test_workspaces.py).
 */
const OPENAPI = JSON.parse(
  readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "../../../../openapi.json"), "utf8"),
) as { components: { schemas: Record<string, { properties?: Record<string, { pattern?: string }> }> } };

const title = (value: string) => resourceFormSchema.shape.title.safeParse(value);
const workspaceName = (value: string) => workspaceNameSchema.safeParse({ name: value });
const displayName = (value: string) => profileSchema.safeParse({ display_name: value });
const registered = (value: string) => registerSchema.shape.display_name.safeParse(value);

const FIELDS = { title, workspaceName, displayName, registered };

const REFUSED: [string, string][] = [
  ["\u200b", "zero-width space"],
  ["\ufeff", "byte order mark"],
  ["\u3164", "Hangul filler: a letter that shows nothing"],
  ["\u202eevil.exe", "right-to-left override"],
  ["\u202eexe.txt", "right-to-left override"],
  ["Payroll \u202e", "right-to-left override at the end"],
  ["a\u2028b", "line separator"],
  ["Payroll\u2028Click", "line separator"],
  ["a\u2029b", "paragraph separator"],
  ["a\u2066b\u2069", "bidi isolates"],
  ["a\u0085b", "next line (C1 control)"],
  ["a\nb", "newline"],
  ["   ", "spaces only"],
  ["\u00a0\u3000", "spaces all the same"],
  ["\u200d\ufe0f", "a joiner and a variation selector, nothing to join"],
  ["\u{e0067}\u{e007f}", "emoji tags without their flag"],
  ["soft\u00adhyphen", "soft hyphen"],
  ["a\u180eb", "Mongolian vowel separator"],
];

const TAKEN: [string, string][] = [
  [" Fix it ", "Fix it"],
  ["👨\u200d👩\u200d👧 family", "👨\u200d👩\u200d👧 family"], // joiners in emoji
  ["\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"], // Persian, with its zero-width non-joiner
  ["\u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}", "\u{1f3f4}\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}"], // a flag
  ["שלום\u200f (1)", "שלום\u200f (1)"], // a right-to-left mark
  ["漢字", "漢字"],
];

describe("titles and names: one line of visible text", () => {
  for (const [name, parse] of Object.entries(FIELDS)) {
    describe(name, () => {
      it.each(REFUSED)("refuses %j (%s)", (value) => {
        expect(parse(value).success).toBe(false);
      });

      it.each(TAKEN)("takes %j as %j", (value, stored) => {
        const parsed = parse(value);
        expect(parsed.success).toBe(true);
        expect(JSON.stringify(parsed.data)).toContain(JSON.stringify(stored));
      });
    });
  }

  it("refuses every control, separator and format character as the one character of a title", () => {
    const unseen = /^[\p{Cc}\p{Zl}\p{Zp}\p{Cf}\p{Zs}]$/u;
    const taken: string[] = [];
    for (let code = 0; code < 0x110000; code++) {
      if (code >= 0xd800 && code <= 0xdfff) continue;
      const char = String.fromCodePoint(code);
      if (unseen.test(char) && title(char).success) taken.push(`U+${code.toString(16).toUpperCase()}`);
    }
    expect(taken).toEqual([]);
  });
});

describe("the rule is the one the API documents state", () => {
  it("for every title and name the forms send", () => {
    const patterns = Object.fromEntries(
      Object.entries(OPENAPI.components.schemas).flatMap(([schema, { properties = {} }]) =>
        ["title", "name", "display_name"].filter((field) => properties[field]?.pattern).map((field) => [`${schema}.${field}`, properties[field]?.pattern]),
      ),
    );
    for (const sent of ["ResourceCreate.title", "ResourceUpdate.title", "WorkspaceCreate.name", "WorkspaceUpdate.name", "RegisterParams.display_name", "UpdateMeParams.display_name"]) {
      expect(patterns).toHaveProperty([sent]);
    }
    for (const [field, pattern] of Object.entries(patterns)) expect([field, pattern]).toEqual([field, LINE_PATTERN]);
  });

  it("and the checks agree with the pattern on every BMP character, alone, before a letter and after one", () => {
    const pattern = new RegExp(LINE_PATTERN, "u");
    const astral = [0x110bd, 0x1343f, 0x1bca0, 0x1d17a, 0xe0000, 0xe0fff, 0x10000, 0x1f600, 0xe1000, 0x10ffff];
    const codes = [...Array.from({ length: 0x10000 }, (_, code) => code).filter((code) => code < 0xd800 || code > 0xdfff), ...astral];
    const disagree: string[] = [];
    for (const code of codes) {
      const char = String.fromCodePoint(code);
      for (const value of [char, `a${char}`, `${char}a`]) {
        const checked = refusedCharacter(value) === null && showsSomething(value);
        if (checked !== pattern.test(value)) disagree.push(JSON.stringify(value));
      }
    }
    expect(disagree).toEqual([]);
  });
});
