import type { Metadata } from "next";
import { Suspense } from "react";
import { LoadingState } from "@/components/states";
import { WorkspaceBoard } from "./workspace-board";

export const metadata: Metadata = { title: "Workspace" };

/** `/workspace/?id=<workspace id>` */
export default function WorkspacePage() {
  return (
    <Suspense fallback={<LoadingState />}>
      <WorkspaceBoard />
    </Suspense>
  );
}
