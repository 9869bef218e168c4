"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { nextParam, withNext } from "@/lib/auth-next";
import { applyServerErrors, safeNext } from "@/lib/forms";
import { getServices } from "@/lib/services";
import { PASSWORD_HINT, registerSchema, type RegisterInput } from "@/lib/validations/auth";
import { FormField } from "../form-field";
import { Button } from "../ui/button";
import { AuthCard, FormError } from "./auth-card";

type Registered = { email: string; signedIn: boolean };

/**
 * Create an account, then sign in with it. The hub answers the same for a new and a
 * taken address (202; a verification link or a note to the owner goes out by mail), so
 * the page cannot tell which — it tries to sign in with what was typed: that works for
 * the new account (unverified accounts may sign in) and for the owner of a taken address
 * who typed their own password; anyone else is asked to check their mail.
 *
 * `?next=` (from "Create one" on the sign-in page, or an invitation opened signed out)
 * is kept the whole way: signed in, the page continues there; otherwise its "Sign in"
 * link carries it on. Only a same-site path is followed (`safeNext`).
 */
export function RegisterForm() {
  const router = useRouter();
  const next = nextParam(useSearchParams().get("next"));
  const [registered, setRegistered] = useState<Registered | null>(null);
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
      const user = await auth.login({ email: body.email, password: body.password });
      if (user.email_verified) router.replace(safeNext(next));
      else setRegistered({ email: body.email, signedIn: true });
    } catch {
      setRegistered({ email: body.email, signedIn: false });
    }
  });

  if (registered?.signedIn) {
    return (
      <AuthCard
        title="Confirm your email"
        description={`We sent a link to ${registered.email}. You can use Hubbub meanwhile; to join a workspace you are invited to, confirm the address first.`}
      >
        <Button asChild className="w-full">
          <Link href={safeNext(next)}>Continue</Link>
        </Button>
      </AuthCard>
    );
  }

  if (registered) {
    return (
      <AuthCard
        title="Check your email"
        description={`We sent a message to ${registered.email}: a link to confirm a new account, or — if the address has an account already — a note to its owner.`}
      >
        <Button asChild className="w-full">
          <Link href={withNext("/login/", next)}>Sign in</Link>
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
          <Link href={withNext("/login/", next)} className="text-foreground underline underline-offset-4">
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
