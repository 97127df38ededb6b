import { expect, test, type Page } from "@playwright/test";
import { readFile } from "node:fs/promises";
import { watchForProblems } from "./problems";

const COLUMNS =
  "metric,series,bucket_start,resolution_s,count,sum,min,max,mean,p50,p90,p99,p999,unit";
const METRIC = "request_latency";

/** RFC 4180: quoted fields with "" escapes, CRLF record ends. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      record.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
      i++;
    } else field += c;
  }
  expect(quoted || field !== "" || record.length > 0, "unterminated record").toBe(false);
  return records;
}

/** Picks the one metric (after searching for it) and a preset range. */
async function chooseMetric(page: Page) {
  await page.goto("/reports");
  await page.getByRole("searchbox", { name: "Search metrics" }).fill("latency");
  const metrics = page.getByRole("list", { name: "Metrics" });
  await metrics.getByRole("checkbox", { name: new RegExp(`^${METRIC} `) }).check();
  await expect(metrics.getByRole("checkbox", { name: /^price / })).toHaveCount(0);
  await page.getByRole("radio", { name: "Last 1 h" }).check();
}

/** Waits (the page re-asks every few seconds) until the estimate counts stored rows. */
async function waitForRows(page: Page) {
  await expect(page.getByTestId("estimate")).toHaveAttribute("data-rows", /^[1-9]\d*$/, {
    timeout: 60_000,
  });
}

async function download(page: Page) {
  const [file] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download" }).click(),
  ]);
  await expect(page.getByTestId("download-done")).toBeVisible();
  return { name: file.suggestedFilename(), text: await readFile(await file.path(), "utf8") };
}

test("one metric's CSV and printable HTML report download with their content", async ({ page }) => {
  test.setTimeout(120_000);
  const problems = watchForProblems(page);
  await chooseMetric(page);
  await waitForRows(page);

  // CSV at auto resolution (1 s for the last hour).
  const csv = await download(page);
  expect(csv.name).toMatch(new RegExp(`^streamboard-${METRIC}-.*-1s\\.csv$`));
  const records = parseCsv(csv.text);
  expect(records[0].join(",")).toBe(COLUMNS);
  const rows = records.slice(1);
  const data = rows.filter((r) => r[2] !== "total");
  const totals = rows.filter((r) => r[2] === "total");
  expect(data.length).toBeGreaterThan(0);
  expect(totals.length).toBeGreaterThan(0);
  for (const row of rows) {
    expect(row).toHaveLength(14);
    expect(row[0]).toBe(METRIC);
    expect(row[3]).toBe("1");
    expect(row[13]).toBe("ms");
  }
  expect(data[0][2]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  expect(Number(totals[0][4])).toBeGreaterThan(0);
  // One total per series.
  expect(new Set(totals.map((r) => r[1])).size).toBe(totals.length);
  expect(new Set(data.map((r) => r[1]))).toEqual(new Set(totals.map((r) => r[1])));

  // The printable report at 1-minute resolution.
  await page.getByRole("radio", { name: "Printable HTML" }).check();
  await page.getByRole("combobox", { name: "Resolution" }).selectOption("1m");
  await waitForRows(page);
  const html = await download(page);
  expect(html.name).toMatch(new RegExp(`^streamboard-${METRIC}-.*-1m\\.html$`));
  expect(html.text).toContain("<title>Streamboard report");
  expect(html.text).toContain("<h1>Streamboard report</h1>");
  expect(html.text).toContain(METRIC);
  expect(html.text).toContain("<svg");
  expect(html.text).not.toContain("<script");
  expect(problems).toEqual([]);
});

test("a refused export says what to change next to the form", async ({ page }) => {
  const problems = watchForProblems(page);
  await chooseMetric(page);
  // The form's own check: a custom range that ends before it starts.
  await page.getByRole("radio", { name: "Custom (UTC)" }).check();
  await expect(page.getByLabel("From (UTC)")).not.toHaveValue("");
  await page.getByLabel("To (UTC)").fill("2020-01-01T00:00");
  await expect(page.getByRole("alert")).toContainText("to: must be after from");
  await expect(page.getByRole("button", { name: "Download" })).toBeDisabled();
  // The server's: 30 days is beyond the 1-second history's retention.
  await page.getByRole("radio", { name: "Last 30 d" }).check();
  await page.getByRole("combobox", { name: "Resolution" }).selectOption("1s");
  await expect(page.getByRole("alert")).toContainText("from: the range starts before");
  await expect(page.getByRole("alert")).toContainText("coarser resolution");
  // Those refusals (and the browser's console line for each) are the only problems.
  const refusal = /^422 .*\/api\/v1\/export\/estimate\?|status of 422 \(Unprocessable Entity\)$/;
  expect(problems.some((p) => refusal.test(p))).toBe(true);
  expect(problems.filter((p) => !refusal.test(p))).toEqual([]);
});
