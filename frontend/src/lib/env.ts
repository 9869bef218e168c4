import { z } from "zod";

/**
 * Public settings, validated once. The app is a static export served by the
 * hub on one origin, so the defaults are same-origin paths; override only to
 * point a dev build elsewhere. (`next dev` proxies `/api/*` and `/ws` to
 * HUBBUB_HUB_URL instead, see next.config.ts.)
 */
const schema = z.object({
  apiBase: z.string().startsWith("/").or(z.url()).default("/api/v1"),
  wsUrl: z.url({ protocol: /^wss?$/ }).optional(),
});

export const env = schema.parse({
  apiBase: process.env.NEXT_PUBLIC_HUBBUB_API_BASE || undefined,
  wsUrl: process.env.NEXT_PUBLIC_HUBBUB_WS_URL || undefined,
});
