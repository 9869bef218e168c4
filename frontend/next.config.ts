import type { NextConfig } from "next";
import { PHASE_DEVELOPMENT_SERVER } from "next/constants";

/**
 * Hubbub's frontend is a static export: `next build` writes plain files to
 * `out/`, which the Python hub serves on the same origin as `/api/v1` and
 * `/ws`. No Node process runs in production, so there are no route handlers,
 * no server actions and no dynamic route segments (ids travel in search
 * params). During `next dev` only, `/api/*` and `/ws` are rewritten to a
 * running hub (`HUBBUB_HUB_URL`, default http://127.0.0.1:8080) so the app
 * keeps talking to its own origin; rewrites cannot be combined with
 * `output: 'export'`, hence the phase switch.
 */
export default function config(phase: string): NextConfig {
  const base: NextConfig = {
    reactStrictMode: true,
    trailingSlash: true,
    images: { unoptimized: true },
    poweredByHeader: false,
  };

  if (phase === PHASE_DEVELOPMENT_SERVER) {
    const hub = (process.env.HUBBUB_HUB_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
    return {
      ...base,
      // Keep `/api/v1/...` and `/ws` exactly as the browser wrote them.
      skipTrailingSlashRedirect: true,
      async rewrites() {
        return [
          { source: "/api/:path*", destination: `${hub}/api/:path*` },
          { source: "/ws", destination: `${hub}/ws` },
        ];
      },
    };
  }

  return { ...base, output: "export" };
}
