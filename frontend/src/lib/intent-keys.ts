/**
 * Idempotency keys that follow the user's intent. Sending an input again after its
 * attempt failed (a lost reply, a 504, the connection gone) reuses that attempt's key,
 * so the hub replays what may already have been done instead of doing it twice. Any
 * other send — a first one, or the same input again while the first is still on its way
 * or after it went through — is a new intent with a new key.
 *
 * The input names the intent (what the user asked for); the request sent for it may
 * carry more, worked out at the time (a card's place in its column as shown then). A
 * failed attempt's key goes with exactly the request it sent, and sending the input
 * again sends that request again: the hub refuses a key used with a different request
 * (422), and a different request under a new key would be done twice.
 */
export class IntentKeys<Sent> {
  private readonly failed = new Map<string, { key: string; sent: Sent }>();

  constructor(private readonly mint: () => string = () => globalThis.crypto.randomUUID()) {}

  /**
   * The key to send `input` (any string naming the intent) with, and the request to
   * send: after a failed attempt, its key and its request; else a new key and `fresh()`.
   */
  take(input: string, fresh: () => Sent): { key: string; sent: Sent } {
    const failed = this.failed.get(input);
    if (failed === undefined) return { key: this.mint(), sent: fresh() };
    this.failed.delete(input);
    return failed;
  }

  /** Sending `input` as `sent` with `key` failed: sending it again takes that key and request. */
  failedWith(input: string, key: string, sent: Sent): void {
    this.failed.set(input, { key, sent });
  }
}
