"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useState } from "react";
import { useForm } from "react-hook-form";
import { FormError } from "@/components/auth/auth-card";
import { FormField } from "@/components/form-field";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { useToast } from "@/components/toaster";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { describeError } from "@/lib/error-messages";
import { orMade } from "@/lib/errors";
import { applyServerErrors } from "@/lib/forms";
import { getServices } from "@/lib/services";
import {
  PASSWORD_HINT,
  changePasswordSchema,
  profileSchema,
  type ChangePasswordInput,
  type ProfileInput,
} from "@/lib/validations/auth";

/** `PATCH /users/me`: the display name. */
export function ProfileForm() {
  const user = useSessionStore((s) => s.user);
  const toast = useToast();
  const form = useForm<ProfileInput>({
    resolver: zodResolver(profileSchema),
    values: { display_name: user?.display_name ?? "" },
  });
  const { errors, isSubmitting, isDirty } = form.formState;

  const onSubmit = form.handleSubmit(async (values) => {
    try {
      // Made but unanswered (too_large, applied): saved; the session's user takes the new name.
      const saved = await orMade(getServices().auth.updateMe(values), () => {
        if (user) getServices().session.setUser({ ...user, ...values });
        return values;
      });
      form.reset({ display_name: saved.display_name });
      toast({ title: "Profile saved" });
    } catch (error) {
      applyServerErrors(error, form.setError, ["display_name"]);
    }
  });

  return (
    <Card>
      <CardHeader>
        <CardTitle>Profile</CardTitle>
        <CardDescription>How others see you.</CardDescription>
      </CardHeader>
      <CardContent>
        <form noValidate className="grid gap-4" aria-label="Profile" onSubmit={onSubmit}>
          <FormError message={errors.root?.server?.message} />
          <FormField label="Email" value={user?.email ?? ""} readOnly disabled />
          <FormField label="Name" autoComplete="name" error={errors.display_name} {...form.register("display_name")} />
          <div>
            <Button type="submit" disabled={isSubmitting || !isDirty}>
              {isSubmitting ? "Saving…" : "Save"}
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

/** `POST /users/me/password`: signs out every other session; this one stays. */
export function ChangePasswordForm() {
  const toast = useToast();
  const form = useForm<ChangePasswordInput>({
    resolver: zodResolver(changePasswordSchema),
    defaultValues: { current_password: "", new_password: "", confirm: "" },
  });
  const { errors, isSubmitting } = form.formState;

  const onSubmit = form.handleSubmit(async ({ current_password, new_password }) => {
    try {
      await orMade(getServices().auth.changePassword({ current_password, new_password }), () => undefined);
      form.reset();
      toast({ title: "Password changed", description: "Your other sessions were signed out." });
    } catch (error) {
      applyServerErrors(error, form.setError, ["current_password", "new_password"]);
    }
  });

  return (
    <Card>
      <CardHeader>
        <CardTitle>Password</CardTitle>
        <CardDescription>Changing it signs out your other sessions.</CardDescription>
      </CardHeader>
      <CardContent>
        <form noValidate className="grid gap-4" aria-label="Change password" onSubmit={onSubmit}>
          <FormError message={errors.root?.server?.message} />
          <FormField
            label="Current password"
            type="password"
            autoComplete="current-password"
            error={errors.current_password}
            {...form.register("current_password")}
          />
          <FormField
            label="New password"
            type="password"
            autoComplete="new-password"
            hint={PASSWORD_HINT}
            error={errors.new_password}
            {...form.register("new_password")}
          />
          <FormField
            label="Repeat new password"
            type="password"
            autoComplete="new-password"
            error={errors.confirm}
            {...form.register("confirm")}
          />
          <div>
            <Button type="submit" disabled={isSubmitting}>
              {isSubmitting ? "Changing…" : "Change password"}
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}

/** `POST /auth/logout-all`: every session, this one included. */
export function SessionsCard() {
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  async function signOutEverywhere() {
    setBusy(true);
    try {
      await getServices().auth.logoutEverywhere();
    } catch (error) {
      toast({ title: "Could not sign out everywhere", description: describeError(error), variant: "destructive" });
      setBusy(false);
    }
  }
  return (
    <Card>
      <CardHeader>
        <CardTitle>Sessions</CardTitle>
        <CardDescription>Lost a device, or signed in somewhere you should not have? End every session, this one too.</CardDescription>
      </CardHeader>
      <CardContent>
        <Button variant="outline" onClick={() => void signOutEverywhere()} disabled={busy}>
          {busy ? "Signing out…" : "Sign out everywhere"}
        </Button>
      </CardContent>
    </Card>
  );
}
