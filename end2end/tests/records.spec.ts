// The Records page tails a stream live: a record put after the page opened shows on top, the
// server-side filter hides what does not match, and a field opens the definition editor with
// it filled in. This spec runs its own server (demo producer off) so the records it puts into
// the embedded endpoint are the only ones.
import { expect, test } from "@playwright/test";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, putRecords, serve, stop } from "./own-server";
import { watchForProblems } from "./problems";

test("a tail shows records put after the page opened, filtered on the server", async ({ page }) => {
  test.setTimeout(60_000);
  const dataDir = mkdtempSync(join(tmpdir(), "streamboard-e2e-records-"));
  const port = await freePort();
  const endpointPort = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const endpoint = `http://127.0.0.1:${endpointPort}`;
  let child: ChildProcess | undefined;
  try {
    child = await serve(port, dataDir, ["--demo-rate", "0", "--embedded-listen", `127.0.0.1:${endpointPort}`]);
    const problems = watchForProblems(page);
    await page.goto(`${base}/streams`);
    await page.locator('tr[data-shard] [data-testid="records-link"]').first().waitFor();
    await page.goto(`${base}/streams/logs/records`);
    await expect(page.locator('[data-state="connected"]')).toBeVisible();
    // The tail's readers have polled (LATEST iterators exist) once the figures show.
    await expect(page.getByTestId("tail-rates")).toContainText("Showing");

    const marker = `first-${Date.now()}`;
    await putRecords(endpoint, "logs", [{ key: "a", data: { level: "info", msg: marker, took_ms: 12 } }]);
    const records = page.getByRole("region", { name: "Records" }).getByTestId("record");
    await expect(records.first()).toContainText(marker, { timeout: 15_000 });
    await expect(records.first()).toHaveAttribute("data-kind", "json");

    // Filter on the server: only errors from now on.
    await page.getByLabel("Filter").fill('/level = "error"');
    await page.getByRole("button", { name: "Apply" }).click();
    await expect(records).toHaveCount(0);
    const wanted = `wanted-${Date.now()}`;
    const hidden = `hidden-${Date.now()}`;
    // Put until the new tail's readers have their iterators and the wanted record shows.
    await expect
      .poll(async () => {
        await putRecords(endpoint, "logs", [
          { key: "b", data: { level: "info", msg: hidden } },
          { key: "c", data: { level: "error", msg: wanted, took_ms: 250 } },
        ]);
        return records.count();
      }, { timeout: 20_000, intervals: [1_000] })
      .toBeGreaterThan(0);
    await expect(records.first()).toContainText(wanted);
    await expect(page.getByRole("region", { name: "Records" })).not.toContainText(hidden);
    await expect(page.getByTestId("tail-rates")).toContainText(/Showing \S+\/s of \S+\/s matching/);

    // A bad filter is refused at its field.
    await page.getByLabel("Filter").fill("/level >> 1");
    await page.getByRole("button", { name: "Apply" }).click();
    await expect(page.locator('[data-error-for="filter"]')).toContainText("position");

    // Make a metric from a field: the editor opens with it filled in.
    await page.getByLabel("Filter").fill("");
    await page.getByRole("button", { name: "Apply" }).click();
    const last = `last-${Date.now()}`;
    await expect
      .poll(async () => {
        await putRecords(endpoint, "logs", [{ key: "d", data: { level: "warn", msg: last, took_ms: 99 } }]);
        return records.count();
      }, { timeout: 20_000, intervals: [1_000] })
      .toBeGreaterThan(0);
    await records.first().locator('[data-field-path="/took_ms"]').click();
    await expect(page).toHaveURL(/\/metrics\/new\?/);
    await expect(page.getByLabel("Stream")).toHaveValue("logs");
    await expect(page.getByLabel("Value")).toHaveValue("/took_ms");
    // The refused filter came over the socket, not as an HTTP error.
    expect(problems).toEqual([]);
  } finally {
    if (child) await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
