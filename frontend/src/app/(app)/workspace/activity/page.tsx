import type { Metadata } from "next";
import { Suspense } from "react";
import { LoadingState } from "@/components/states";
import { ActivityView } from "./activity-view";

export const metadata: Metadata = { title: "Activity" };

/** `/workspace/activity/?id=<workspace id>` */
export default function ActivityPage() {
  return (
    <Suspense fallback={<LoadingState />}>
      <ActivityView />
    </Suspense>
  );
}
