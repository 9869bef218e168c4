import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test, type Page } from "@playwright/test";

const results = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "test-results");

function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  return errors;
}

test("the login page renders from the static export and validates on the client", async ({ page }) => {
  const errors = collectErrors(page);
  await page.goto("/login/");
  await expect(page).toHaveTitle("Sign in · Hubbub");
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await expect(page.getByLabel("Email")).toBeVisible();
  await expect(page.getByLabel("Password")).toBeVisible();
  await page.screenshot({ path: path.join(results, "login.png"), fullPage: true });

  // Hydrated: Zod rules run in the browser, no request leaves it.
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByText("Enter a valid email address")).toBeVisible();
  await expect(page.getByLabel("Email")).toHaveAttribute("aria-invalid", "true");
  expect(errors).toEqual([]);
});

test("the dark-mode toggle sets the class on <html> and survives a reload", async ({ page }) => {
  const errors = collectErrors(page);
  await page.emulateMedia({ colorScheme: "light" });
  await page.goto("/login/");
  const html = page.locator("html");
  await expect(html).not.toHaveClass(/dark/);
  await page.getByTestId("theme-toggle").click();
  await expect(html).toHaveClass(/dark/);
  await page.reload();
  await expect(html).toHaveClass(/dark/);
  await page.screenshot({ path: path.join(results, "login-dark.png"), fullPage: true });
  expect(errors).toEqual([]);
});

test("trailing-slash routes and the 404 page are served like the hub will", async ({ page }) => {
  const response = await page.goto("/no-such-page/");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await page.goto("/register");
  await expect(page).toHaveURL(/\/register\/$/);
});
