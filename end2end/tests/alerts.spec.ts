import { expect, test } from "@playwright/test";
import { watchForProblems } from "./problems";

// The demo producer puts ~50 records/s into clickstream, so a rule "records rate > 1" goes
// pending at once and fires after its pending period.
test("a rule created in the form goes pending, fires, toasts, is silenced and shows in the history", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/alerts");
  await expect(page.locator('[data-state="connected"]')).toBeVisible(); // hydrated and live
  await expect(page.getByRole("heading", { name: "No alert rules" })).toBeVisible();

  await page.getByTestId("new-rule").click();
  const form = page.getByTestId("rule-form");
  await form.locator('input[name="name"]').fill("clickstream flowing");
  await form.locator('input[name="metric"]').fill("builtin:clickstream:records");
  await form.locator('select[name="statistic"]').selectOption("rate");
  await form.locator('input[name="window"]').fill("90s");
  await form.locator('input[name="threshold"]').fill("1");
  await form.locator('input[name="for"]').fill("3s");

  // Refused by the server: the message sits at the window field.
  await form.getByRole("button", { name: "Save rule" }).click();
  await expect(form.locator('[data-error-for="window"]')).toContainText("not a window");

  // The preview shows the current value against the threshold.
  await form.locator('input[name="window"]').fill("5s");
  await form.getByRole("button", { name: "Preview" }).click();
  await expect(page.getByTestId("alert-preview")).toContainText("breaching");
  await expect(page.getByTestId("alert-preview-chart")).toBeVisible();

  await form.getByRole("button", { name: "Save rule" }).click();
  const row = page.locator('tr[data-rule="clickstream flowing"]');
  await expect(row.locator('[data-state="pending"]')).toBeVisible();
  await expect(row.locator('[data-state="firing"]')).toBeVisible({ timeout: 15_000 });
  await expect(row.getByTestId("alert-value")).toHaveText(/\d/);

  // Toast and badge on every page.
  await expect(page.getByTestId("toast").first()).toContainText("clickstream flowing is firing");
  await expect(page.getByTestId("alert-badge")).toHaveAttribute("data-count", "1");

  // Silence it for an hour.
  await row.getByRole("button", { name: "Silence", exact: true }).click();
  await expect(row.getByTestId("silenced")).toContainText("silenced until");

  // The history shows the transitions, filterable by state.
  const history = page.getByTestId("history");
  await expect(history.locator('[data-testid="history-row"][data-to="firing"]')).toBeVisible();
  await expect(history.locator('[data-testid="history-row"][data-to="pending"]')).toBeVisible();
  await page.getByTestId("history-state").selectOption("firing");
  await expect(history.locator('[data-testid="history-row"][data-to="pending"]')).toHaveCount(0);
  await expect(history.locator('[data-testid="history-row"][data-to="firing"]')).toHaveCount(1);

  // The badge follows to another page.
  await page.getByRole("link", { name: "Dashboard" }).click();
  await expect(page.getByTestId("alert-badge")).toHaveAttribute("data-count", "1");

  // The only refused request is the one the test provoked.
  const provoked = (p: string) =>
    (p.startsWith("422 ") && p.endsWith("/api/v1/alerts")) ||
    p === "console error: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)";
  expect(problems.filter((p) => !provoked(p))).toEqual([]);
  expect(problems.filter((p) => p.startsWith("422 "))).toHaveLength(1);
});
