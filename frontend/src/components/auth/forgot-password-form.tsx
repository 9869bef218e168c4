"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { applyServerErrors } from "@/lib/forms";
import { getServices } from "@/lib/services";
import { forgotPasswordSchema, type ForgotPasswordInput } from "@/lib/validations/auth";
import { FormField } from "../form-field";
import { Button } from "../ui/button";
import { AuthCard, FormError } from "./auth-card";

export function ForgotPasswordForm() {
  const [sent, setSent] = useState(false);
  const form = useForm<ForgotPasswordInput>({ resolver: zodResolver(forgotPasswordSchema), defaultValues: { email: "" } });
  const { errors, isSubmitting } = form.formState;

  const onSubmit = form.handleSubmit(async (values) => {
    try {
      await getServices().auth.requestPasswordReset(values);
      setSent(true);
    } catch (error) {
      applyServerErrors(error, form.setError, ["email"]);
    }
  });

  const footer = (
    <Link href="/login/" className="text-foreground underline underline-offset-4">
      Back to sign in
    </Link>
  );

  if (sent) {
    return (
      <AuthCard title="Check your email" description="If an account exists for that address, a reset link is on its way." footer={footer}>
        <p className="text-sm text-muted-foreground">The link works once and expires soon.</p>
      </AuthCard>
    );
  }

  return (
    <AuthCard title="Reset your password" description="We will email you a link." footer={footer}>
      <form noValidate onSubmit={onSubmit} className="grid gap-4" aria-label="Reset your password">
        <FormError message={errors.root?.server?.message} />
        <FormField label="Email" type="email" autoComplete="email" error={errors.email} {...form.register("email")} />
        <Button type="submit" disabled={isSubmitting}>
          {isSubmitting ? "Sending…" : "Send reset link"}
        </Button>
      </form>
    </AuthCard>
  );
}
