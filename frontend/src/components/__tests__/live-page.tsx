import { act, render } from "@testing-library/react";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { expect } from "vitest";
import type { AuthSession } from "@/lib/api/session";
import type { UserPublic } from "@/lib/api/types";
import { RealtimeProvider } from "@/lib/realtime/react";
import { flush, type setup } from "@/lib/realtime/__tests__/harness";

/**
 * Sign `user` in, render `page` in the app's providers (a fresh query cache, the session
 * store, toasts, `h`'s realtime client), accept its socket and answer its subscribe to
 * `workspace:w1` — with `refusal`, or (without one) letting it stand. The page tests that
 * follow a workspace live share this; each then waits for what its page shows.
 */
export async function openLivePage(
  page: ReactNode,
  { session, h, user, refusal }: { session: AuthSession; h: ReturnType<typeof setup>; user: UserPublic; refusal?: { code: string; message: string; status: number } },
) {
  // Imported here, after the test file's vi.mock of the services they use has taken effect.
  const { SessionStoreProvider } = await import("../providers/session-store-provider");
  const { ToastProvider } = await import("../toaster");
  session.accept({ access_token: "t", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user });
  const queries = new QueryClient({ defaultOptions: { queries: { retry: false, staleTime: 60_000 } } });
  render(
    <QueryClientProvider client={queries}>
      <SessionStoreProvider>
        <ToastProvider>
          <RealtimeProvider client={h.client}>{page}</RealtimeProvider>
        </ToastProvider>
      </SessionStoreProvider>
    </QueryClientProvider>,
  );
  const socket = await act(async () => h.accept());
  const subscribe = socket.last("subscribe");
  expect(subscribe.channel).toBe("workspace:w1");
  await act(async () => {
    if (refusal) socket.fail(subscribe.id as number, refusal);
    else socket.reply(subscribe.id as number, { channel: "workspace:w1", offset: 0, epoch: "e", recovered: false, publications: [] });
    await flush();
  });
  return { socket, queries };
}
