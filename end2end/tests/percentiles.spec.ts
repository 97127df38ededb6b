// A dashboard card of a metric with several series shows the exact p99 of all their values
// merged, live: this spec runs its own server with the demo producer off, puts records with
// known values into the embedded endpoint, and compares the card with the ground truth.
import { expect, test } from "@playwright/test";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, putRecords, serve, stop } from "./own-server";
import { watchForProblems } from "./problems";

/** The q-quantile as the server's histogram reports it: the value of rank ceil(q * n). */
function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

test("a multi-series card's live p99 is the exact p99 of the merged values", async ({ page }) => {
  test.setTimeout(60_000);
  const dataDir = mkdtempSync(join(tmpdir(), "streamboard-e2e-p99-"));
  const port = await freePort();
  const endpointPort = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  try {
    child = await serve(port, dataDir, [
      "--demo-rate", "0",
      "--start", "trim_horizon",
      "--embedded-listen", `127.0.0.1:${endpointPort}`,
    ]);
    const metric = "e2e_merged_latency";
    const created = await fetch(`${base}/api/v1/metrics`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: metric, stream: "clickstream", value: "/latency_ms", dimensions: ["/region"], unit: "ms" }),
    });
    expect(created.status).toBe(201);

    // Every value of 100..255 once (exact in a 2-significant-figure histogram, shown as whole
    // numbers), shuffled over four regions: with no ties, the merged p99 (the second largest
    // value) differs from the largest series p99 (the maximum of the series holding 255).
    const values = Array.from({ length: 156 }, (_, i) => 100 + i);
    for (let i = values.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [values[i], values[j]] = [values[j], values[i]];
    }
    const regions = ["r0", "r1", "r2", "r3"];
    const byRegion = new Map<string, number[]>(regions.map((r) => [r, []]));
    const docs = values.map((latency, i) => {
      const region = regions[i % regions.length];
      byRegion.get(region)!.push(latency);
      return { key: `k${i}`, data: { region, latency_ms: latency } };
    });
    const all = [...byRegion.values()].flat();
    const truth = quantile(all, 0.99);
    // The bound cards showed before (the largest series p99) would not pass.
    const largestSeriesP99 = Math.max(...[...byRegion.values()].map((v) => quantile(v, 0.99)));
    expect(largestSeriesP99).toBeGreaterThan(truth);

    const problems = watchForProblems(page);
    await page.goto(`${base}/`);
    await expect(page.locator('[data-state="connected"]')).toBeVisible();
    await putRecords(`http://127.0.0.1:${endpointPort}`, "clickstream", docs);

    const card = page.locator(`a[data-metric="${metric}"]`);
    await expect(card.locator('[data-field="p99"]')).toHaveText(String(truth), { timeout: 20_000 });
    // The metric page's live window agrees, with p50 and p90 too.
    await page.goto(`${base}/metric/${metric}?range=5m`);
    const summary = page.getByTestId("range-summary");
    await expect(summary.locator('[data-field="count"]')).toHaveText(String(all.length));
    for (const [field, q] of [["p50", 0.5], ["p90", 0.9], ["p99", 0.99]] as const) {
      await expect(summary.locator(`[data-field="${field}"]`)).toHaveText(String(quantile(all, q)));
    }
    expect(problems).toEqual([]);
  } finally {
    if (child) await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
