import type { Metadata } from "next";
import { Suspense } from "react";
import { RegisterForm } from "@/components/auth/register-form";
import { LoadingState } from "@/components/states";

export const metadata: Metadata = { title: "Create an account" };

/** `/register/[?next=…]`: the form reads `next` from the address (a static export has it only in the browser). */
export default function RegisterPage() {
  return (
    <Suspense fallback={<LoadingState />}>
      <RegisterForm />
    </Suspense>
  );
}
