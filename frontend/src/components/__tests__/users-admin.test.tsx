// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthSession } from "@/lib/api/session";
import type { ListUsersQuery, UserPublic } from "@/lib/api/types";
import { HubError } from "@/lib/errors";

const user = (n: number, extra: Partial<UserPublic> = {}): UserPublic => ({
  id: `u${n}`,
  email: `user${n}@example.com`,
  display_name: `User ${n}`,
  role: "member",
  is_active: true,
  email_verified: true,
  created_at: "2026-01-01T00:00:00Z",
  last_login_at: null,
  ...extra,
});

const ADMIN = user(0, { role: "admin", email: "admin@example.com", display_name: "Admin" });
const session = new AuthSession({ locks: null });
const list = vi.fn(async (query: ListUsersQuery) =>
  query.cursor === "c1"
    ? { items: [user(3), user(4)], next_cursor: null }
    : { items: [ADMIN, user(1), user(2)], next_cursor: "c1" },
);
const update = vi.fn(async (id: string, body: Partial<UserPublic>) => ({ ...user(Number(id.slice(1))), ...body }));

vi.mock("@/lib/services", () => ({ getServices: () => ({ session, users: { list, update } }) }));

const { UsersAdmin } = await import("@/app/(app)/admin/users/users-admin");
const { SessionStoreProvider } = await import("../providers/session-store-provider");
const { ToastProvider } = await import("../toaster");
const { QueryProvider } = await import("../providers/query-provider");

afterEach(cleanup);

function renderPage() {
  session.accept({ access_token: "t", token_type: "bearer", expires_in: 900, refresh_expires_in: 2592000, refresh_token: null, user: ADMIN });
  return render(
    <SessionStoreProvider>
      <ToastProvider>
        <QueryProvider>
          <UsersAdmin />
        </QueryProvider>
      </ToastProvider>
    </SessionStoreProvider>,
  );
}

const rows = () => screen.getAllByTestId("user-row").map((row) => row.getAttribute("data-email"));

describe("admin users", () => {
  it("pages with the cursor, filters, and changes a role", async () => {
    renderPage();
    await waitFor(() => expect(rows()).toEqual(["admin@example.com", "user1@example.com", "user2@example.com"]));
    expect(list).toHaveBeenLastCalledWith({ limit: 25 }, expect.any(AbortSignal));

    fireEvent.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(rows()).toHaveLength(5));
    expect(list).toHaveBeenLastCalledWith({ limit: 25, cursor: "c1" }, expect.any(AbortSignal));
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();

    // Your own row is read-only.
    const mine = screen.getAllByTestId("user-row")[0]!;
    expect((within(mine).getByRole("combobox") as HTMLSelectElement).disabled).toBe(true);

    fireEvent.change(screen.getByRole("combobox", { name: "Role of user2@example.com" }), { target: { value: "admin" } });
    await waitFor(() => expect(update).toHaveBeenCalledWith("u2", { role: "admin" }));
    expect(await screen.findByText("Role changed")).toBeTruthy();

    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "inactive" } });
    await waitFor(() => expect(list).toHaveBeenLastCalledWith({ limit: 25, is_active: false }, expect.any(AbortSignal)));
  });

  it("shows the hub's refusal (the last admin) as a toast and keeps the row", async () => {
    update.mockRejectedValueOnce(
      HubError.fromResponse(409, { code: "conflict", detail: "the last active admin cannot be demoted or deactivated", status: 409 }),
    );
    renderPage();
    await waitFor(() => expect(rows()).toHaveLength(3));
    fireEvent.click(screen.getByRole("button", { name: "Deactivate user1@example.com" }));
    const dialog = await screen.findByRole("alertdialog");
    await act(async () => {
      fireEvent.click(within(dialog).getByRole("button", { name: "Deactivate" }));
    });
    expect(await screen.findByText("The last active admin cannot be demoted or deactivated.")).toBeTruthy();
    expect(screen.getByText("The change was not saved")).toBeTruthy();
    const row = screen.getAllByTestId("user-row").find((r) => r.getAttribute("data-email") === "user1@example.com")!;
    expect(within(row).getByText("Active")).toBeTruthy();
  });

  it("a change the hub made but could not answer (too_large, details.applied) reads as done: no failure title, the row shows it", async () => {
    update.mockRejectedValueOnce(
      HubError.fromResponse(413, { code: "too_large", status: 413, detail: "the change was applied, but its answer is too large to send: read the result back", details: { applied: true } }),
    );
    renderPage();
    await waitFor(() => expect(rows()).toHaveLength(3));
    fireEvent.change(screen.getByRole("combobox", { name: "Role of user2@example.com" }), { target: { value: "admin" } });
    expect(await screen.findAllByText("Role changed")).not.toHaveLength(0); // the toast (and its live-region copy)
    expect(screen.queryByText("The change was not saved")).toBeNull();
    expect((screen.getByRole("combobox", { name: "Role of user2@example.com" }) as HTMLSelectElement).value).toBe("admin");
  });
});

