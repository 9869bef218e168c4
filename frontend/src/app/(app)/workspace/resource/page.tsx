import type { Metadata } from "next";
import { Suspense } from "react";
import { LoadingState } from "@/components/states";
import { ResourceDetail } from "./resource-detail";

export const metadata: Metadata = { title: "Card" };

/** `/workspace/resource/?ws=<workspace id>&id=<resource id>` */
export default function ResourcePage() {
  return (
    <Suspense fallback={<LoadingState />}>
      <ResourceDetail />
    </Suspense>
  );
}
