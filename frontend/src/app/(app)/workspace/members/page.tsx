import type { Metadata } from "next";
import { Suspense } from "react";
import { LoadingState } from "@/components/states";
import { MembersView } from "./members-view";

export const metadata: Metadata = { title: "Members" };

/** `/workspace/members/?id=<workspace id>` */
export default function MembersPage() {
  return (
    <Suspense fallback={<LoadingState />}>
      <MembersView />
    </Suspense>
  );
}
