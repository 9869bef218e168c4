"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { applyServerErrors } from "@/lib/forms";
import { getServices } from "@/lib/services";
import { PASSWORD_HINT, registerSchema, type RegisterInput } from "@/lib/validations/auth";
import { FormField } from "../form-field";
import { Button } from "../ui/button";
import { AuthCard, FormError } from "./auth-card";

/** Create an account, then sign in with it (if that fails, say so and offer the login page). */
export function RegisterForm() {
  const router = useRouter();
  const [created, setCreated] = useState(false);
  const form = useForm<RegisterInput>({
    resolver: zodResolver(registerSchema),
    defaultValues: { display_name: "", email: "", password: "", confirm: "" },
  });
  const { errors, isSubmitting } = form.formState;

  const onSubmit = form.handleSubmit(async ({ confirm: _confirm, ...body }) => {
    const { auth } = getServices();
    try {
      await auth.register(body);
    } catch (error) {
      applyServerErrors(error, form.setError, ["display_name", "email", "password"]);
      return;
    }
    try {
      await auth.login({ email: body.email, password: body.password });
      router.replace("/workspaces/");
    } catch {
      setCreated(true);
    }
  });

  if (created) {
    return (
      <AuthCard title="Account created" description="Sign in with your new account.">
        <Button asChild className="w-full">
          <Link href="/login/">Sign in</Link>
        </Button>
      </AuthCard>
    );
  }

  return (
    <AuthCard
      title="Create an account"
      footer={
        <span>
          Have an account?{" "}
          <Link href="/login/" className="text-foreground underline underline-offset-4">
            Sign in
          </Link>
        </span>
      }
    >
      <form noValidate onSubmit={onSubmit} className="grid gap-4" aria-label="Create an account">
        <FormError message={errors.root?.server?.message} />
        <FormField label="Name" autoComplete="name" error={errors.display_name} {...form.register("display_name")} />
        <FormField label="Email" type="email" autoComplete="email" error={errors.email} {...form.register("email")} />
        <FormField
          label="Password"
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
          {isSubmitting ? "Creating…" : "Create account"}
        </Button>
      </form>
    </AuthCard>
  );
}
