import { expect, test, type Locator, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";
import { watchForProblems } from "./problems";

// The embedded default's demo streams feed `builtin:clickstream:records` and the demo
// definitions (`request_latency` by region and path), so every panel has data at once.

async function addPanel(page: Page, title: string, kind: string, metric: string, more?: (form: Locator) => Promise<void>) {
  await page.getByRole("button", { name: "Add panel" }).click();
  const form = page.getByTestId("panel-form");
  await form.getByLabel("Title", { exact: true }).fill(title);
  await form.getByLabel("Kind", { exact: true }).selectOption(kind);
  await form.getByLabel("Metric", { exact: true }).selectOption(metric);
  if (more) await more(form);
  await form.getByRole("button", { name: "Apply" }).click();
  await expect(form).toHaveCount(0);
  await expect(page.locator(`section[data-panel="${title}"]`)).toBeVisible();
}

test("a dashboard built in the browser is saved, reloaded, linked, exported and imported", async ({ page }) => {
  test.setTimeout(90_000); // about 60 page actions, two reloads and two imports
  const problems = watchForProblems(page);
  await page.goto("/dashboards");
  await expect(page.locator('[data-state="connected"]')).toBeVisible(); // hydrated and live
  await page.getByLabel("Name").fill("Checkout board");
  await page.getByRole("button", { name: "Create" }).click();
  await expect(page).toHaveURL(/\/dashboards\/\d+$/);
  const id = Number(new URL(page.url()).pathname.split("/").pop());
  await expect(page.getByTestId("dashboard-name")).toHaveText("Checkout board");

  // Three kinds of panel, one moved and one resized, then saved.
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  await addPanel(page, "Clicks", "timeseries", "builtin:clickstream:records", async (form) => {
    await form.locator('input[name="statistics"][value="rate"]').check();
    await form.locator('input[name="statistics"][value="count"]').check();
  });
  await addPanel(page, "Click rate", "stat", "builtin:clickstream:records", async (form) => {
    await form.getByLabel("Thresholds (stat colours)").fill("1000000, 2000000");
  });
  // A refusal from the document's checks shows at its field.
  await page.getByRole("button", { name: "Add panel" }).click();
  const form = page.getByTestId("panel-form");
  await form.getByLabel("Title", { exact: true }).fill("Latency by series");
  await form.getByLabel("Kind", { exact: true }).selectOption("table");
  await form.getByLabel("Metric", { exact: true }).selectOption("request_latency");
  await form.getByLabel("Series", { exact: true }).selectOption("top");
  await form.getByLabel("Top N").fill("50");
  await form.getByRole("button", { name: "Apply" }).click();
  await expect(form.locator('[data-error-for="top"]')).toContainText("1 to 20 series");
  await form.getByLabel("Top N").fill("3");
  await form.getByRole("button", { name: "Apply" }).click();
  await expect(page.locator('section[data-panel="Latency by series"]')).toBeVisible();

  const stat = page.locator('section[data-panel="Click rate"]');
  await expect(stat).toHaveAttribute("style", /grid-column:7 \/ span 3;grid-row:1 /);
  await stat.getByRole("button", { name: "Move left" }).click();
  await stat.getByRole("button", { name: "Wider" }).click();
  await expect(page.getByTestId("unsaved")).toBeVisible();
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("save-status")).toHaveText("Saved.");
  await expect(page.getByTestId("unsaved")).toHaveCount(0);

  // Reloaded: every panel is there, with data.
  await page.reload();
  await expect(page.locator('[data-state="connected"]')).toBeVisible();
  for (const [title, kind] of [["Clicks", "timeseries"], ["Click rate", "stat"], ["Latency by series", "table"]]) {
    await expect(page.locator(`section[data-panel="${title}"]`)).toHaveAttribute("data-kind", kind);
  }
  const chart = page.locator('section[data-panel="Clicks"]');
  await expect(chart.locator("path[data-line]")).toHaveCount(2);
  await expect(chart.locator("path[data-line]").first()).toHaveAttribute("d", /M\d/);
  await expect(chart.getByTestId("legend")).toContainText("builtin:clickstream:records rate");
  await chart.getByTestId("plot").hover();
  await expect(chart.getByRole("tooltip")).toContainText("UTC");
  await expect(page.locator('section[data-panel="Click rate"]').getByTestId("stat-value")).toHaveText(/\d/);
  await expect(page.locator('section[data-panel="Click rate"]').getByTestId("stat-value")).toHaveClass(/emerald/);
  const rows = page.locator('section[data-panel="Latency by series"] tbody tr');
  await expect(rows).toHaveCount(3);
  // The stat was moved left onto the chart (which went below it) and widened.
  await expect(page.locator('section[data-panel="Click rate"]')).toHaveAttribute("style", /grid-column:6 \/ span 4;grid-row:1 /);
  await expect(page.locator('section[data-panel="Clicks"]')).toHaveAttribute("style", /grid-row:3 /);

  // A link to the same view at the same range.
  await page.getByRole("button", { name: "Last 6 h" }).click();
  await expect(page).toHaveURL(/range=6h/);
  await page.getByRole("button", { name: "Copy link", exact: true }).click();
  const link = await page.getByTestId("dashboard-link").inputValue();
  expect(link).toMatch(new RegExp(`/dashboards/${id}\\?.*range=6h`));
  await page.goto(link);
  await expect(page.getByTestId("range-label")).toHaveText("Last 6 h");
  await expect(page.locator("section[data-panel]")).toHaveCount(3);

  // Export the file, then import it as a new dashboard.
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Export JSON" }).click();
  const file = readFileSync(await (await download).path(), "utf8");
  const exported = JSON.parse(file);
  expect(exported.name).toBe("Checkout board");
  expect(exported.panels.map((p: { kind: string }) => p.kind)).toEqual(["timeseries", "stat", "table"]);

  await page.goto("/dashboards");
  await expect(page.locator('tr[data-dashboard="Checkout board"]')).toHaveCount(1);
  // A broken copy is refused, naming the field.
  const broken = structuredClone(exported);
  broken.panels[1].kind = "pie";
  await page.locator('textarea[name="dashboard-json"]').fill(JSON.stringify(broken));
  await page.getByRole("button", { name: "Import" }).click();
  await expect(page.getByTestId("import-error")).toHaveText(/^panels\[1\]\.kind: unknown panel kind "pie"/);
  // The file itself is accepted.
  await page.locator('input[name="dashboard-file"]').setInputFiles({
    name: "dashboard.json",
    mimeType: "application/json",
    buffer: Buffer.from(file),
  });
  await expect(page.locator('textarea[name="dashboard-json"]')).toHaveValue(file);
  await page.getByRole("button", { name: "Import" }).click();
  await expect(page).toHaveURL(/\/dashboards\/\d+$/);
  expect(new URL(page.url()).pathname).not.toBe(`/dashboards/${id}`);
  await expect(page.getByTestId("dashboard-name")).toHaveText("Checkout board");
  await expect(page.locator("section[data-panel]")).toHaveCount(3);
  await page.goto("/dashboards");
  await expect(page.locator('tr[data-dashboard="Checkout board"]')).toHaveCount(2);

  // The only refused request is the broken import.
  const provoked = (p: string) =>
    (p.startsWith("422 ") && p.endsWith("/api/v1/dashboards/import")) ||
    p === "console error: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)";
  expect(problems.filter((p) => !provoked(p))).toEqual([]);
});

test("a variable filters every panel, and distribution and heatmap panels draw the values", async ({ page }) => {
  const problems = watchForProblems(page);
  const created = await page.request.post("/api/v1/dashboards", {
    data: {
      name: "Latency values",
      range: "5m",
      variables: [{ name: "region" }],
      panels: [
        { title: "Requests", kind: "stat", x: 0, y: 0, w: 4, h: 2,
          queries: [{ metric: "request_latency", statistics: ["count"] }] },
        { title: "Distribution", kind: "distribution", x: 4, y: 0, w: 8, h: 4,
          queries: [{ metric: "request_latency" }] },
        { title: "Heatmap", kind: "heatmap", x: 0, y: 4, w: 12, h: 4,
          queries: [{ metric: "request_latency" }] },
      ],
    },
  });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  await page.goto(`/dashboards/${id}`);
  await expect(page.locator('[data-state="connected"]')).toBeVisible();

  await expect(page.locator('section[data-panel="Distribution"] rect[data-count]').first()).toBeVisible();
  await expect(page.locator('section[data-panel="Heatmap"] rect[data-count]').first()).toBeAttached();
  const count = page.locator('section[data-panel="Requests"]').getByTestId("stat-value");
  await expect(count).toHaveAttribute("title", /\d/);
  const exact = async () => Number(((await count.getAttribute("title")) ?? "").replaceAll(",", ""));
  const all = await exact();
  expect(all).toBeGreaterThan(0);

  // The variable lists the regions of the stored series; choosing one filters the panels.
  const region = page.locator('select[data-variable="region"]');
  await expect(region.locator("option")).not.toHaveCount(1);
  const first = await region.locator("option").nth(1).getAttribute("value");
  await region.selectOption(first!);
  await expect(page).toHaveURL(new RegExp(`var-region=${encodeURIComponent(first!)}`));
  await expect.poll(exact).toBeLessThan(all);
  const one = await exact();
  expect(one).toBeGreaterThan(0);
  // Back to every region.
  await region.selectOption("*");
  await expect.poll(exact).toBeGreaterThan(one);
  expect(problems).toEqual([]);
});
