"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useEffect, useState } from "react";
import { useForm } from "react-hook-form";
import { applyServerErrors } from "@/lib/forms";
import { getServices } from "@/lib/services";
import { PASSWORD_HINT, resetPasswordSchema, type ResetPasswordInput } from "@/lib/validations/auth";
import { FormField } from "../form-field";
import { Button } from "../ui/button";
import { AuthCard, FormError } from "./auth-card";
import { LoadingState } from "../states";

/**
 * The mailed link is `/reset-password#token=…`: the token travels in the
 * fragment, which never reaches a server log or a Referer. Read it once, then
 * drop it from the address bar (and so from history).
 */
export function readResetToken(location: Pick<Location, "hash" | "search">): string | null {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
  const token = fromHash ?? new URLSearchParams(location.search).get("token");
  return token && token.trim() ? token.trim() : null;
}

export function ResetPasswordForm() {
  // undefined = not read yet (the static HTML has no fragment); null = none in the link
  const [token, setToken] = useState<string | null | undefined>(undefined);
  const [done, setDone] = useState(false);
  const form = useForm<ResetPasswordInput>({
    resolver: zodResolver(resetPasswordSchema),
    defaultValues: { password: "", confirm: "" },
  });
  const { errors, isSubmitting } = form.formState;

  useEffect(() => {
    const found = readResetToken(window.location);
    if (found) window.history.replaceState(window.history.state, "", window.location.pathname);
    // Reading the address happens after hydration (the exported HTML cannot know it).
    // eslint-disable-next-line react-hooks/set-state-in-effect
    setToken(found);
  }, []);

  const onSubmit = form.handleSubmit(async ({ password }) => {
    if (!token) return;
    try {
      await getServices().auth.confirmPasswordReset({ token, new_password: password });
      setDone(true);
    } catch (error) {
      applyServerErrors(error, form.setError, ["password"], { aliases: { new_password: "password" } });
    }
  });

  if (token === undefined) return <LoadingState />;

  if (done) {
    return (
      <AuthCard title="Password changed" description="Every session of your account was signed out. Sign in with your new password.">
        <Button asChild className="w-full">
          <Link href="/login/">Sign in</Link>
        </Button>
      </AuthCard>
    );
  }

  if (!token) {
    return (
      <AuthCard title="This link is incomplete" description="Open the link from the email again, or ask for a new one.">
        <Button asChild className="w-full">
          <Link href="/forgot-password/">Ask for a new link</Link>
        </Button>
      </AuthCard>
    );
  }

  return (
    <AuthCard
      title="Choose a new password"
      footer={
        <Link href="/forgot-password/" className="text-foreground underline underline-offset-4">
          Ask for a new link
        </Link>
      }
    >
      <form noValidate onSubmit={onSubmit} className="grid gap-4" aria-label="Choose a new password">
        <FormError message={errors.root?.server?.message} />
        <FormField
          label="New password"
          type="password"
          autoComplete="new-password"
          hint={PASSWORD_HINT}
          error={errors.password}
          {...form.register("password")}
        />
        <FormField
          label="Repeat password"
          type="password"
          autoComplete="new-password"
          error={errors.confirm}
          {...form.register("confirm")}
        />
        <Button type="submit" disabled={isSubmitting}>
          {isSubmitting ? "Saving…" : "Save password"}
        </Button>
      </form>
    </AuthCard>
  );
}
