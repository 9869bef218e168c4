import { describe, expect, it } from "vitest";
import { IntentKeys } from "../intent-keys";

describe("IntentKeys", () => {
  const counting = <Sent = string>() => {
    let n = 0;
    return new IntentKeys<Sent>(() => `k${++n}`);
  };

  it("sends an input again after a failure with the failed attempt's key", () => {
    const keys = counting();
    const first = keys.take("Design", () => "Design");
    keys.failedWith("Design", first.key, first.sent);
    expect(keys.take("Design", () => "Design")).toEqual(first);
  });

  it("gives a new key to an input sent again after it went through, or while it is on its way", () => {
    const keys = counting();
    expect(keys.take("Design", () => "Design").key).toBe("k1");
    expect(keys.take("Design", () => "Design").key).toBe("k2"); // two cards of one title, on purpose
  });

  it("keeps the failed key of one input from another", () => {
    const keys = counting();
    keys.failedWith("Design", keys.take("Design", () => "Design").key, "Design");
    expect(keys.take("Designs", () => "Designs").key).toBe("k2");
    expect(keys.take("Design", () => "Design").key).toBe("k1");
  });

  it("sends again exactly the request the failed attempt sent, not one worked out anew", () => {
    const keys = counting<{ title: string; position?: string }>();
    const first = keys.take("Buy milk", () => ({ title: "Buy milk", position: "a3" }));
    keys.failedWith("Buy milk", first.key, first.sent);
    // Asked again where the column ends elsewhere now (or where no place is sent): the failed request, as it was.
    expect(keys.take("Buy milk", () => ({ title: "Buy milk" }))).toEqual({ key: "k1", sent: { title: "Buy milk", position: "a3" } });
    // That attempt went through: the next is a new intent, sent as it is now.
    expect(keys.take("Buy milk", () => ({ title: "Buy milk" }))).toEqual({ key: "k2", sent: { title: "Buy milk" } });
  });
});
