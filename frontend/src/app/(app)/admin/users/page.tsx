import type { Metadata } from "next";
import { PageHeader } from "@/components/page-header";
import { EmptyState } from "@/components/states";

export const metadata: Metadata = { title: "Users" };

/** Placeholder: GET /users, PATCH /users/{id} (role, active) — admins only; the hub enforces it. */
export default function AdminUsersPage() {
  return (
    <>
      <PageHeader title="Users" description="Everyone with an account. Admins only." />
      <EmptyState title="No users loaded" description="Roles and deactivation will be managed here." />
    </>
  );
}
