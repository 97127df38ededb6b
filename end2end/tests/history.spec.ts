// A stored range shows data written before a restart: this spec runs its own `streamboard
// serve` on a free port with its own data directory, stops it, and starts it again without the
// demo producer, so everything the page shows afterwards was read back from SQLite.
import { expect, test } from "@playwright/test";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, serve, stop } from "./own-server";
import { watchForProblems } from "./problems";

/** Records of `metric` stored over the last 6 hours. */
async function storedCount(port: number, metric: string): Promise<number> {
  const to = Date.now() + 60_000;
  const url = `http://127.0.0.1:${port}/api/v1/query?metric=${metric}&from=${to - 6 * 3_600_000}&to=${to}&tier=1m`;
  const response = await fetch(url);
  if (!response.ok) return 0;
  return (await response.json()).summary.count as number;
}

test("a stored range shows data written before a restart", async ({ page }) => {
  test.setTimeout(90_000);
  const dataDir = mkdtempSync(join(tmpdir(), "streamboard-e2e-history-"));
  const port = await freePort();
  const children: ChildProcess[] = [];
  try {
    const first = await serve(port, dataDir, []);
    children.push(first);
    await expect.poll(() => storedCount(port, "request_latency"), { timeout: 30_000 }).toBeGreaterThan(100);
    await stop(first);

    // Again, with no producer: nothing new arrives, the history is what was stored.
    const second = await serve(port, dataDir, ["--demo-rate", "0"]);
    children.push(second);
    const stored = await storedCount(port, "request_latency");
    expect(stored).toBeGreaterThan(100);

    const problems = watchForProblems(page);
    // Records the first server's endpoint took but its consumer had not read yet are read
    // after the restart, so the stored count can still grow for a moment: the page must agree
    // with the database once it no longer does.
    await expect(async () => {
      await page.goto(`http://127.0.0.1:${port}/metric/request_latency?range=6h`);
      await expect(page.getByRole("button", { name: "Last 6 h" })).toHaveAttribute("aria-pressed", "true");
      await expect(page.getByTestId("chart-source")).toHaveText("Charts: stored 1-min buckets");
      const count = page.getByTestId("range-summary").locator('[data-field="count"]');
      await expect(count).toHaveText(/^[1-9]/);
      await expect(page.locator('svg[aria-label="Value distribution"] rect').first()).toBeVisible();
      const before = await storedCount(port, "request_latency");
      const bars = await page.locator('svg[aria-label="Value distribution"] rect').evaluateAll((rects) =>
        rects.reduce((sum, r) => sum + Number(r.getAttribute("data-count")), 0),
      );
      expect(bars).toBe(before);
      expect(await storedCount(port, "request_latency")).toBe(before);
    }).toPass({ timeout: 30_000 });

    // The dashboard's cards read the same stored range.
    await page.goto(`http://127.0.0.1:${port}/?range=6h`);
    const card = page.locator('a[data-metric="request_latency"]');
    await expect(card.locator('[data-field="p99"]')).toHaveText(/^\d/);
    await expect(card).toContainText("Last 6 h");
    expect(problems).toEqual([]);
  } finally {
    for (const child of children) await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
