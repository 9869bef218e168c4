"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { applyServerErrors } from "@/lib/forms";
import { getServices } from "@/lib/services";
import { resetPasswordSchema, type ResetPasswordInput } from "@/lib/validations/auth";
import { FormField } from "../form-field";
import { Button } from "../ui/button";
import { AuthCard, FormError } from "./auth-card";

export function ResetPasswordForm() {
  const token = useSearchParams().get("token") ?? "";
  const [done, setDone] = useState(false);
  const form = useForm<ResetPasswordInput>({
    resolver: zodResolver(resetPasswordSchema),
    defaultValues: { token, password: "", confirm: "" },
  });
  const { errors, isSubmitting } = form.formState;

  const onSubmit = form.handleSubmit(async ({ token: t, password }) => {
    try {
      await getServices().auth.confirmPasswordReset({ token: t, new_password: password });
      setDone(true);
    } catch (error) {
      applyServerErrors(error, form.setError, ["password"]);
    }
  });

  if (done) {
    return (
      <AuthCard title="Password changed" description="Sign in with your new password.">
        <Button asChild className="w-full">
          <Link href="/login/">Sign in</Link>
        </Button>
      </AuthCard>
    );
  }

  return (
    <AuthCard title="Choose a new password">
      <form noValidate onSubmit={onSubmit} className="grid gap-4" aria-label="Choose a new password">
        <FormError message={errors.root?.server?.message ?? errors.token?.message} />
        <input type="hidden" {...form.register("token")} />
        <FormField
          label="New password"
          type="password"
          autoComplete="new-password"
          hint="At least 8 characters."
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
