import { expect, test } from "@playwright/test";
import { watchForProblems } from "./problems";

// The validation step below gets a 422 on purpose; every other 4xx/5xx or console error counts.
const expectedRefusal = (problem: string) =>
  /^422 .*\/api\/v1\/metrics\/preview/.test(problem) ||
  /console error: Failed to load resource: .* 422/.test(problem);

test("a metric created in the editor is previewed, starts showing values, is edited and deleted", async ({ page }) => {
  test.setTimeout(60_000);
  const problems = watchForProblems(page);
  const name = `e2e_slow_requests_${Date.now()}`;
  await page.goto("/metrics/new");
  // Hydrated and live: the stream choices come from the live overview.
  await expect(page.locator('#stream-names option[value="clickstream"]')).toHaveCount(1);
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Stream").fill("clickstream");
  // The stream's discovered fields are offered.
  await expect(page.getByRole("region", { name: "Discovered fields" })).toContainText("/latency_ms");
  await expect(page.locator('#field-paths option[value="/region"]')).toHaveCount(1);

  // A refusal is shown next to the field it names.
  await page.getByLabel("Value").fill("latency_ms");
  await page.getByRole("button", { name: "Preview" }).click();
  await expect(page.locator('[data-error-for="value"]')).toContainText("JSON Pointer");
  await expect(page.getByLabel("Value")).toHaveAttribute("aria-invalid", "true");

  await page.getByLabel("Value").fill("/latency_ms");
  await page.getByLabel("Filter").fill("/latency_ms > 100");
  await page.getByLabel("Dimension 1").fill("/region");
  await page.getByLabel("Unit").fill("ms");
  await page.getByRole("button", { name: "Preview" }).click();
  await expect(page.getByTestId("preview-summary")).toContainText(/Preview on \d+ recent records of clickstream: [1-9]\d* values/);
  await expect(page.locator('[data-error-for="value"]')).toHaveCount(0);
  await expect(page.getByRole("table", { name: "Preview" }).locator("tbody tr").first()).toBeVisible();

  await page.getByRole("button", { name: "Save" }).click();
  await expect(page).toHaveURL(new RegExp(`/metric/${name}$`));
  await expect(page.getByTestId("metric-name")).toHaveText(name);
  // Values flow in: the live 5-min window counts records.
  const count = page.getByTestId("range-summary").locator('[data-field="count"]');
  await expect
    .poll(async () => (await count.textContent()) ?? "", { timeout: 20_000 })
    .toMatch(/^[1-9]/);
  await expect(page.getByTestId("definition")).toContainText('"/latency_ms > 100"');

  // The dashboard card shows a rate.
  await page.goto("/");
  const card = page.locator(`a[data-metric="${name}"]`);
  await expect(card.locator('[data-field="rate"]')).toHaveText(/^[0-9.]+[kMG]?\/s$/);

  // Edit, then delete.
  await page.goto(`/metric/${name}`);
  await page.getByRole("link", { name: "Edit definition" }).click();
  await expect(page).toHaveURL(new RegExp(`/metrics/${name}/edit$`));
  await expect(page.getByLabel("Value")).toHaveValue("/latency_ms");
  await expect(page.getByLabel("Dimension 1")).toHaveValue("/region");
  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Confirm delete" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator("a[data-metric]").first()).toBeVisible();
  await expect(page.locator(`a[data-metric="${name}"]`)).toHaveCount(0);

  expect(problems.filter((p) => !expectedRefusal(p))).toEqual([]);
});

test("the range is kept in the URL and survives a reload", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/metric/request_latency");
  const picker = page.getByRole("group", { name: "Time range" });
  await expect(picker.getByRole("button", { name: "Last 5 min" })).toHaveAttribute("aria-pressed", "true");
  // Live: the charts read stored 1-s buckets and refresh.
  await expect(page.getByTestId("chart-source")).toContainText("1-s buckets, refreshed while live");
  await picker.getByRole("button", { name: "Last 6 h" }).click();
  await expect(page).toHaveURL(/\?range=6h$/);
  await expect(page.getByTestId("chart-source")).toHaveText("Charts: stored 1-min buckets");
  await page.reload();
  await expect(page.getByRole("group", { name: "Time range" }).getByRole("button", { name: "Last 6 h" }))
    .toHaveAttribute("aria-pressed", "true");
  await expect(page.getByTestId("range-mode")).toHaveText("stored history");
  await expect(page.getByTestId("chart-source")).toHaveText("Charts: stored 1-min buckets");
  // The value distribution has bars.
  await expect(page.locator('svg[aria-label="Value distribution"] rect').first()).toBeVisible();
  expect(problems).toEqual([]);
});
