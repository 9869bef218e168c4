import { describe, expect, it } from "vitest";
import { IntentKeys } from "../intent-keys";

describe("IntentKeys", () => {
  const counting = () => {
    let n = 0;
    return new IntentKeys(() => `k${++n}`);
  };

  it("sends an input again after a failure with the failed attempt's key", () => {
    const keys = counting();
    const first = keys.take("Design");
    keys.failedWith("Design", first);
    expect(keys.take("Design")).toBe(first);
  });

  it("gives a new key to an input sent again after it went through, or while it is on its way", () => {
    const keys = counting();
    expect(keys.take("Design")).toBe("k1");
    expect(keys.take("Design")).toBe("k2"); // two cards of one title, on purpose
  });

  it("keeps the failed key of one input from another", () => {
    const keys = counting();
    keys.failedWith("Design", keys.take("Design"));
    expect(keys.take("Designs")).toBe("k2");
    expect(keys.take("Design")).toBe("k1");
  });
});
