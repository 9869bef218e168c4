"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useForm } from "react-hook-form";
import { sentence } from "@/lib/error-messages";
import { withNext } from "@/lib/auth-next";
import { applyServerErrors, safeNext } from "@/lib/forms";
import { getServices } from "@/lib/services";
import { SIGN_OUT_MESSAGES, isSignOutReason } from "@/lib/sign-out-reasons";
import { loginSchema, type LoginInput } from "@/lib/validations/auth";
import { FormField } from "../form-field";
import { Alert } from "../ui/alert";
import { Button } from "../ui/button";
import { AuthCard, FormError } from "./auth-card";

export function LoginForm() {
  const router = useRouter();
  const params = useSearchParams();
  const next = safeNext(params.get("next"));
  const reason = params.get("reason");
  const form = useForm<LoginInput>({ resolver: zodResolver(loginSchema), defaultValues: { email: "", password: "" } });
  const { errors, isSubmitting } = form.formState;

  const onSubmit = form.handleSubmit(async (values) => {
    try {
      await getServices().auth.login(values);
      router.replace(next);
    } catch (error) {
      applyServerErrors(error, form.setError, ["email", "password"], {
        rootMessage: (e) => {
          if (e.status === 401) return "Wrong email or password.";
          if (e.status === 403) return sentence(e.message); // "this account is deactivated"
          return undefined;
        },
      });
    }
  });

  return (
    <AuthCard
      title="Sign in"
      description="Welcome back to Hubbub."
      footer={
        <span>
          No account?{" "}
          <Link href={withNext("/register/", params.get("next"))} className="text-foreground underline underline-offset-4">
            Create one
          </Link>
        </span>
      }
    >
      <form noValidate onSubmit={onSubmit} className="grid gap-4" aria-label="Sign in">
        {isSignOutReason(reason) && !errors.root?.server ? (
          <Alert role="status" data-testid="sign-out-reason" variant={reason === "deactivated" ? "destructive" : "default"}>
            {SIGN_OUT_MESSAGES[reason]}
          </Alert>
        ) : null}
        <FormError message={errors.root?.server?.message} />
        <FormField label="Email" type="email" autoComplete="email" autoFocus error={errors.email} {...form.register("email")} />
        <FormField
          label="Password"
          type="password"
          autoComplete="current-password"
          error={errors.password}
          {...form.register("password")}
        />
        <div className="flex justify-end text-sm">
          <Link href="/forgot-password/" className="text-muted-foreground underline-offset-4 hover:underline">
            Forgot password?
          </Link>
        </div>
        <Button type="submit" disabled={isSubmitting}>
          {isSubmitting ? "Signing in…" : "Sign in"}
        </Button>
      </form>
    </AuthCard>
  );
}
