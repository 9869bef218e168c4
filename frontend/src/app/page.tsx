"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect } from "react";
import { LoadingState } from "@/components/states";

/** A static export cannot redirect on the server: send the browser on to the workspaces list. */
export default function Home() {
  const router = useRouter();
  useEffect(() => router.replace("/workspaces/"), [router]);
  return (
    <div className="grid min-h-dvh place-items-center">
      <div className="grid gap-2 text-center">
        <LoadingState label="Opening Hubbub…" />
        <Link href="/workspaces/" className="text-sm underline underline-offset-4">
          Continue
        </Link>
      </div>
    </div>
  );
}
