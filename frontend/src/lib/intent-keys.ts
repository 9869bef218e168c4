/**
 * Idempotency keys that follow the user's intent. Sending an input again after its
 * attempt failed (a lost reply, a 504, the connection gone) reuses that attempt's key,
 * so the hub replays what may already have been done instead of doing it twice. Any
 * other send — a first one, or the same input again while the first is still on its way
 * or after it went through — is a new intent with a new key.
 */
export class IntentKeys {
  private readonly failed = new Map<string, string>();

  constructor(private readonly mint: () => string = () => globalThis.crypto.randomUUID()) {}

  /** The key to send `input` (any string naming what is sent) with. */
  take(input: string): string {
    const key = this.failed.get(input);
    if (key === undefined) return this.mint();
    this.failed.delete(input);
    return key;
  }

  /** Sending `input` with `key` failed: sending it again takes that key. */
  failedWith(input: string, key: string): void {
    this.failed.set(input, key);
  }
}
