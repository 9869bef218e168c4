import type { Metadata } from "next";
import { PageHeader } from "@/components/page-header";
import { UsersAdmin } from "./users-admin";

export const metadata: Metadata = { title: "Users" };

/** Admins only: the hub enforces it on every call; the page only hides itself from others. */
export default function AdminUsersPage() {
  return (
    <>
      <PageHeader title="Users" description="Everyone with an account: search, roles, deactivation." />
      <UsersAdmin />
    </>
  );
}
