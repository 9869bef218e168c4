import type { Metadata } from "next";
import { Suspense } from "react";
import { VerifyEmailView } from "@/components/auth/verify-email-view";
import { LoadingState } from "@/components/states";

export const metadata: Metadata = { title: "Confirm your email" };

/** `/verify-email#token=…` — the link from the sign-up email (token in the fragment). */
export default function VerifyEmailPage() {
  return (
    <Suspense fallback={<LoadingState />}>
      <VerifyEmailView />
    </Suspense>
  );
}
