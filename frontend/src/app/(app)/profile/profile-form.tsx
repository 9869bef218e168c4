"use client";

import { zodResolver } from "@hookform/resolvers/zod";
import { useForm } from "react-hook-form";
import { FormError } from "@/components/auth/auth-card";
import { FormField } from "@/components/form-field";
import { useSessionStore } from "@/components/providers/session-store-provider";
import { Button } from "@/components/ui/button";
import { Card, CardContent } from "@/components/ui/card";
import { profileSchema, type ProfileInput } from "@/lib/validations/auth";

/** Placeholder: validates locally; saving (PATCH /users/me) arrives with the API wiring. */
export function ProfileForm() {
  const user = useSessionStore((s) => s.user);
  const form = useForm<ProfileInput>({
    resolver: zodResolver(profileSchema),
    values: { display_name: user?.display_name ?? "" },
  });
  const { errors } = form.formState;
  return (
    <Card className="max-w-lg">
      <CardContent className="pt-6">
        <form noValidate className="grid gap-4" aria-label="Profile" onSubmit={form.handleSubmit(() => {})}>
          <FormError message={errors.root?.server?.message} />
          <FormField label="Email" value={user?.email ?? ""} readOnly disabled />
          <FormField label="Name" autoComplete="name" error={errors.display_name} {...form.register("display_name")} />
          <div>
            <Button type="submit" disabled title="Coming with the API wiring">
              Save
            </Button>
          </div>
        </form>
      </CardContent>
    </Card>
  );
}
