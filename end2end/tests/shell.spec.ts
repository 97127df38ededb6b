import { expect, test } from "@playwright/test";
import { watchForProblems } from "./problems";

test("the dashboard hydrates, is styled and goes live", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/");

  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
  await expect(page).toHaveTitle("Dashboard · Streamboard");

  // Live: the badge turns connected once the WebSocket hello round trip completes.
  const badge = page.getByRole("status", { name: "Connection" });
  await expect(badge).toHaveAttribute("data-state", "connected");
  await expect(badge).toHaveText("Live");

  // Styled: Tailwind's CSS applied (the nav is a flex row, the body has a background).
  const navDisplay = await page
    .getByRole("navigation", { name: "Main" })
    .evaluate((nav) => getComputedStyle(nav).display);
  expect(navDisplay).toBe("flex");
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).not.toBe("rgba(0, 0, 0, 0)");

  // Hydrated: the theme switch's click handler runs only in the browser's wasm.
  const html = page.locator("html");
  const wasDark = await html.evaluate((el) => el.classList.contains("dark"));
  await page.getByRole("button", { name: /Switch to (dark|light) mode/ }).click();
  await expect(html).toHaveClass(wasDark ? /^(?!.*\bdark\b)/ : /\bdark\b/);
  expect(await page.evaluate(() => localStorage.getItem("streamboard-theme"))).toBe(
    wasDark ? "light" : "dark",
  );

  expect(problems).toEqual([]);
});

test("navigation reaches every page client-side", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/");
  await expect(page.getByRole("status", { name: "Connection" })).toHaveAttribute("data-state", "connected");
  for (const name of ["Streams", "Alerts", "Reports", "Dashboard"]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name, exact: true }).click();
    await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
    await expect(page.getByRole("link", { name, exact: true })).toHaveAttribute("aria-current", "page");
  }
  // Still the same live connection: client-side routing does not reload the page.
  await expect(page.getByRole("status", { name: "Connection" })).toHaveAttribute("data-state", "connected");
  expect(problems).toEqual([]);
});

test("an unknown address shows the 404 page", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { level: 1, name: "Page not found" })).toBeVisible();
  await page.getByRole("link", { name: "Back to the dashboard" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Dashboard" })).toBeVisible();
});

test("the health endpoint answers", async ({ request }) => {
  const response = await request.get("/healthz");
  expect(response.status()).toBe(200);
  const body = await response.json();
  expect(body.status).toBe("ok");
  expect(body.database_ok).toBe(true);
});
