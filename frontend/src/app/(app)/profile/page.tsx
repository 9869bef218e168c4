import type { Metadata } from "next";
import { PageHeader } from "@/components/page-header";
import { ChangePasswordForm, ProfileForm, SessionsCard } from "./profile-form";

export const metadata: Metadata = { title: "Profile" };

export default function ProfilePage() {
  return (
    <>
      <PageHeader title="Your account" description="Profile, password and sessions." />
      <div className="grid max-w-2xl gap-6">
        <ProfileForm />
        <ChangePasswordForm />
        <SessionsCard />
      </div>
    </>
  );
}
