import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DEFAULTS } from "../options";

/** The README's words about the realtime client's defaults are the code's (`options.ts`). */
const README = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "../../../../README.md"), "utf8");
const number = (text: string) => Number(text.replace(/_/g, ""));

describe("frontend/README.md: the realtime client's defaults", () => {
  it("the options example gives every default it names as the code has it", () => {
    const example = README.match(/const client = new RealtimeClient\(\{([\s\S]*?)\n\}\);/)?.[1];
    expect(example).toBeTruthy();
    const named = [...example!.matchAll(/\b(\w+): ([\d_]+)\b/g)].map(([, key, value]) => [key, number(value!)] as const);
    expect(named.map(([key]) => key)).toContain("maxCallsInFlight");
    for (const [key, value] of named) expect([key, value]).toEqual([key, DEFAULTS[key as keyof typeof DEFAULTS]]);
  });

  it("the outbox's limit in prose is the code's maxCallsInFlight", () => {
    const said = [...README.matchAll(/at most (\d+) mutations and (\d+) other calls|`maxCallsInFlight` \((\d+)\)/g)].flatMap((m) => m.slice(1).filter(Boolean).map(Number));
    expect(said.length).toBeGreaterThanOrEqual(3);
    expect(new Set(said)).toEqual(new Set([DEFAULTS.maxCallsInFlight]));
  });
});
