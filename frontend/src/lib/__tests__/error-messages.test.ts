import { describe, expect, it } from "vitest";
import { describeError, endSentence, sentence } from "../error-messages";
import { HubError } from "../errors";

describe("endSentence: exactly one full stop", () => {
  it.each([
    ["Your name is now Ann", "Your name is now Ann."],
    ["Your name is now Ann B.", "Your name is now Ann B."],
    ["Saved!", "Saved!"],
    ["Really?", "Really?"],
    ["Loading…", "Loading…"],
    ["The workspace “Launch.”", "The workspace “Launch.”"],
    ["(see the members page.)", "(see the members page.)"],
    ["The workspace “Launch”", "The workspace “Launch”."],
    ["trailing space.  ", "trailing space."],
    ["", ""],
  ])("%j → %j", (input, expected) => {
    expect(endSentence(input)).toBe(expected);
    expect(endSentence(endSentence(input))).toBe(expected);
  });
});

describe("sentence and describeError never double a period", () => {
  it("a hub message that already ends a sentence keeps its one stop", () => {
    expect(sentence("no such workspace.")).toBe("No such workspace.");
    expect(sentence("name “Q3 plan.”")).toBe("Name “Q3 plan.”");
    const error = new HubError({ code: "conflict", status: 409, message: "a workspace keeps at least one owner." });
    expect(describeError(error)).toBe("A workspace keeps at least one owner.");
    const server = new HubError({ code: "internal", status: 500, message: "internal error.", details: { request_id: "r1" } });
    expect(describeError(server)).toBe("Internal error. Try again in a moment. Request id: r1.");
    expect(describeError(server)).not.toMatch(/\.\./);
  });
});

describe("describeError of a change the hub made but could not answer", () => {
  it("says it was made (the hub's message says to read the result back, which is not the person's to do)", () => {
    const error = HubError.fromFrame({ code: "too_large", status: 413, message: "the change was applied, but its answer (…) is larger than the message bus carries", details: { applied: true } });
    expect(describeError(error)).toBe("The change was made, but the server's answer was too large to send back.");
  });
});
