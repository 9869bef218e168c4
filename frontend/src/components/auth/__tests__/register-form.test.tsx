// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { HubError } from "@/lib/errors";

/**
 * The register page after the hub's 202, which is the same for a new and a taken email:
 * it signs in with what was typed — an unverified new account lands on "Confirm your
 * email", a verified one goes on to its workspaces — and a failed sign-in (someone
 * else's address) reads "Check your email", never "this email is taken".
 */
const auth = { register: vi.fn(), login: vi.fn() };
const replace = vi.fn();
let search = "";
vi.mock("@/lib/services", () => ({ getServices: () => ({ auth }) }));
vi.mock("next/navigation", () => ({
  useRouter: () => ({ replace, push: replace }),
  useSearchParams: () => new URLSearchParams(search),
}));

const { RegisterForm } = await import("../register-form");

afterEach(() => {
  cleanup();
  vi.clearAllMocks();
  search = "";
});

async function submit(email: string) {
  render(<RegisterForm />);
  fireEvent.input(screen.getByLabelText("Name"), { target: { value: "Ada" } });
  fireEvent.input(screen.getByLabelText("Email"), { target: { value: email } });
  fireEvent.input(screen.getByLabelText("Password"), { target: { value: "a long password 4821" } });
  fireEvent.input(screen.getByLabelText("Repeat password"), { target: { value: "a long password 4821" } });
  fireEvent.submit(screen.getByRole("form", { name: "Create an account" }));
}

const ACCEPTED = { detail: "Check your mail: we sent a link to confirm this address." };

describe("register page", () => {
  it("a new account is signed in and asked to confirm its address", async () => {
    auth.register.mockResolvedValue(ACCEPTED);
    auth.login.mockResolvedValue({ email: "ada@example.com", email_verified: false });
    await submit("ada@example.com");
    expect(await screen.findByRole("heading", { name: "Confirm your email" })).toBeTruthy();
    expect(screen.getByText(/We sent a link to ada@example\.com\./)).toBeTruthy();
    expect(screen.getByRole("link", { name: "Continue" }).getAttribute("href")).toMatch(/^\/workspaces\/?$/);
    expect(auth.login).toHaveBeenCalledWith({ email: "ada@example.com", password: "a long password 4821" });
    expect(replace).not.toHaveBeenCalled();
  });

  it("a taken address whose password does not match reads 'check your email', not 'taken'", async () => {
    auth.register.mockResolvedValue(ACCEPTED);
    auth.login.mockRejectedValue(new HubError({ code: "unauthorized", status: 401, message: "wrong email or password" }));
    await submit("taken@example.com");
    expect(await screen.findByRole("heading", { name: "Check your email" })).toBeTruthy();
    expect(screen.queryByText(/already exists|is taken/i)).toBeNull();
    expect(screen.getByRole("link", { name: "Sign in" }).getAttribute("href")).toMatch(/^\/login\/?$/);
  });

  it("a verified account (its owner typed their own password) goes on to the workspaces", async () => {
    auth.register.mockResolvedValue(ACCEPTED);
    auth.login.mockResolvedValue({ email: "own@example.com", email_verified: true });
    await submit("own@example.com");
    await waitFor(() => expect(replace).toHaveBeenCalledWith("/workspaces/"));
  });

  it("keeps ?next= (an invitation opened signed out): Continue, Sign in and the redirect go back there", async () => {
    search = "?next=%2Finvitations%2F";
    auth.register.mockResolvedValue(ACCEPTED);
    auth.login.mockResolvedValue({ email: "ada@example.com", email_verified: false });
    render(<RegisterForm />);
    expect(screen.getByRole("link", { name: "Sign in" }).getAttribute("href")).toMatch(/^\/login\/?\?next=%2Finvitations%2F$/);
    cleanup();
    await submit("ada@example.com");
    expect(await screen.findByRole("heading", { name: "Confirm your email" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Continue" }).getAttribute("href")).toMatch(/^\/invitations\/?$/);

    cleanup();
    auth.login.mockRejectedValue(new HubError({ code: "unauthorized", status: 401, message: "wrong email or password" }));
    await submit("taken@example.com");
    expect(await screen.findByRole("heading", { name: "Check your email" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Sign in" }).getAttribute("href")).toMatch(/^\/login\/?\?next=%2Finvitations%2F$/);

    cleanup();
    auth.login.mockResolvedValue({ email: "own@example.com", email_verified: true });
    await submit("own@example.com");
    await waitFor(() => expect(replace).toHaveBeenCalledWith("/invitations/"));
  });

  it("never follows a next to another site", async () => {
    search = "?next=https%3A%2F%2Fevil.example%2F";
    auth.register.mockResolvedValue(ACCEPTED);
    auth.login.mockResolvedValue({ email: "own@example.com", email_verified: true });
    await submit("own@example.com");
    await waitFor(() => expect(replace).toHaveBeenCalledWith("/workspaces/"));
    cleanup();
    search = "?next=%2F%2Fevil.example";
    render(<RegisterForm />);
    expect(screen.getByRole("link", { name: "Sign in" }).getAttribute("href")).toMatch(/^\/login\/?$/);
  });
});
