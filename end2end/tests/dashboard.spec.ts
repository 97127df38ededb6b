import { expect, test } from "@playwright/test";
import { watchForProblems } from "./problems";

test("the dashboard shows the demo streams and their numbers move", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/");
  const streams = page.getByRole("table", { name: "Streams" });
  for (const name of ["clickstream", "logs", "market"]) {
    await expect(streams.locator(`tr[data-stream="${name}"]`)).toBeVisible();
  }
  // Live: the clickstream's records/s cell takes more than one value over time.
  const cell = streams.locator('tr[data-stream="clickstream"] td[data-field="records"]');
  const seen = new Set<string>();
  await expect
    .poll(async () => {
      seen.add((await cell.textContent()) ?? "");
      return seen.size;
    }, { timeout: 20_000 })
    .toBeGreaterThan(1);
  // Metric cards with sparklines.
  await expect(page.locator("a[data-metric]").first()).toBeVisible();
  await expect(page.locator("a[data-metric] svg polyline").first()).toHaveAttribute("points", /\d/);
  expect(problems).toEqual([]);
});

test("the streams page lists shards", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/streams");
  const shards = page.getByRole("table", { name: "Shards" });
  await expect(shards.locator("tr[data-shard]").first()).toBeVisible();
  await expect(shards).toContainText("clickstream");
  await expect(shards).toContainText("shardId-");
  expect(problems).toEqual([]);
});

test("a metric card opens its detail page with a chart", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/");
  const card = page.locator("a[data-metric]").first();
  await expect(card).toBeVisible();
  const name = await card.getAttribute("data-metric");
  await card.click();
  await expect(page).toHaveURL(new RegExp(`/metric/${name}$`));
  await expect(page.getByTestId("metric-name")).toHaveText(name ?? "");
  // The rate chart draws a line once two live samples arrived.
  await expect(page.locator("figure svg polyline").first()).toHaveAttribute("points", / /);
  await expect(page.getByRole("table", { name: "Series" })).toBeVisible();
  expect(problems).toEqual([]);
});
