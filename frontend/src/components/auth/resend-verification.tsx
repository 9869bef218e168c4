"use client";

import { useState } from "react";
import { describeError } from "@/lib/error-messages";
import { HubError } from "@/lib/errors";
import { getServices } from "@/lib/services";
import { Button } from "../ui/button";

/** "Send a new link": a new verification mail for the signed-in user (the hub limits how often). */
export function ResendVerification() {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);

  async function resend() {
    setBusy(true);
    setMessage(null);
    try {
      await getServices().auth.resendVerification();
      setMessage("A new link is on its way: check your mail.");
    } catch (error) {
      if (error instanceof HubError && error.status === 409) setMessage("Your address is confirmed already.");
      else if (error instanceof HubError && error.status === 401) setMessage("Sign in first, then ask for a new link.");
      else setMessage(describeError(error));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="grid gap-2">
      <Button type="button" variant="outline" onClick={() => void resend()} disabled={busy}>
        {busy ? "Sending…" : "Send a new link"}
      </Button>
      {message ? (
        <p role="status" data-testid="resend-outcome" className="text-sm text-muted-foreground">
          {message}
        </p>
      ) : null}
    </div>
  );
}
