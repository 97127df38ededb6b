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
  await expect(form.locator('[data-error-for="queries[0].top"]')).toContainText("1 to 20 series");
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

type Stored = { title: string; x: number; y: number; w: number; h: number; queries: { metric: string; statistics?: string[] }[] };

async function storedPanels(page: Page, id: number): Promise<Stored[]> {
  const answer = await page.request.get(`/api/v1/dashboards/${id}`);
  expect(answer.status()).toBe(200);
  return (await answer.json()).dashboard.panels;
}

/** Presses at `from`, moves in steps to `to` (page pixels), and leaves the button down. */
async function dragTo(page: Page, from: { x: number; y: number }, to: { x: number; y: number }) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(to.x, to.y, { steps: 12 });
}

test("panels are dragged to another cell and resized with the pointer", async ({ page }) => {
  const problems = watchForProblems(page);
  const stat = (title: string, x: number, y: number, w: number, h: number) => ({
    title, kind: "stat", x, y, w, h, queries: [{ metric: "builtin:clickstream:records" }],
  });
  const created = await page.request.post("/api/v1/dashboards", {
    data: {
      name: "Drag board",
      panels: [stat("Alpha", 0, 0, 4, 2), stat("Beta", 4, 0, 4, 2), stat("Gamma", 0, 2, 6, 3)],
    },
  });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  await page.goto(`/dashboards/${id}`);
  await expect(page.locator('[data-state="connected"]')).toBeVisible(); // hydrated
  await page.getByRole("button", { name: "Edit", exact: true }).click();

  const panel = (title: string) => page.locator(`section[data-panel="${title}"]`);
  const grid = (await page.getByTestId("grid").boundingBox())!;
  // 12 columns and 11 gaps of 12 px fill the grid; a row is 88 px and a gap.
  const column = (grid.width + 12) / 12;
  const row = 88 + 12;

  // Alpha's header dragged 8 columns right: the placeholder shows the cell while dragging.
  const title = (await panel("Alpha").getByRole("heading", { name: "Alpha" }).boundingBox())!;
  const grab = { x: title.x + 5, y: title.y + title.height / 2 };
  await dragTo(page, grab, { x: grab.x + 8 * column, y: grab.y });
  const placeholder = page.getByTestId("drop-placeholder");
  await expect(placeholder).toBeVisible();
  await expect(placeholder).toHaveAttribute("style", /^grid-column:9 \/ span 4;grid-row:1 \/ span 2/);
  await page.mouse.up();
  await expect(placeholder).toBeHidden();
  await expect(panel("Alpha")).toHaveAttribute("style", /^grid-column:9 \/ span 4;grid-row:1 \/ span 2$/);
  await expect(page.getByTestId("unsaved")).toBeVisible();

  // Beta's corner dragged 2 columns right and 1 row down: 6 × 3, so Alpha (which it now
  // overlaps) and Gamma (under it) go below it.
  const handle = (await panel("Beta").getByTestId("resize-handle").boundingBox())!;
  const corner = { x: handle.x + handle.width / 2, y: handle.y + handle.height / 2 };
  await dragTo(page, corner, { x: corner.x + 2 * column, y: corner.y + row });
  await page.mouse.up();
  await expect(panel("Beta")).toHaveAttribute("style", /^grid-column:5 \/ span 6;grid-row:1 \/ span 3$/);
  await expect(panel("Alpha")).toHaveAttribute("style", /^grid-column:9 \/ span 4;grid-row:4 \/ span 2$/);
  await expect(panel("Gamma")).toHaveAttribute("style", /^grid-column:1 \/ span 6;grid-row:4 \/ span 3$/);

  // A press on a toolbar button is a click, not a drag.
  await panel("Gamma").getByRole("button", { name: "Move right" }).click();
  await panel("Gamma").getByRole("button", { name: "Move left" }).click();
  await expect(placeholder).toBeHidden();

  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("save-status")).toHaveText("Saved.");
  const places = (panels: Stored[]) => panels.map(({ title, x, y, w, h }) => ({ title, x, y, w, h }));
  const expected = [
    { title: "Alpha", x: 8, y: 3, w: 4, h: 2 },
    { title: "Beta", x: 4, y: 0, w: 6, h: 3 },
    { title: "Gamma", x: 0, y: 3, w: 6, h: 3 },
  ];
  expect(places(await storedPanels(page, id))).toEqual(expected);
  await page.reload();
  await expect(page.locator('[data-state="connected"]')).toBeVisible();
  await expect(panel("Beta")).toHaveAttribute("style", /^grid-column:5 \/ span 6;grid-row:1 \/ span 3$/);
  await expect(panel("Alpha")).toHaveAttribute("style", /^grid-column:9 \/ span 4;grid-row:4 \/ span 2$/);
  expect(problems).toEqual([]);
});

test("a time series panel reads several queries, each with its metric and statistics", async ({ page }) => {
  const problems = watchForProblems(page);
  const created = await page.request.post("/api/v1/dashboards", { data: { name: "Two metrics" } });
  expect(created.status()).toBe(201);
  const { id } = await created.json();
  await page.goto(`/dashboards/${id}`);
  await expect(page.locator('[data-state="connected"]')).toBeVisible();
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  await page.getByRole("button", { name: "Add panel" }).click();
  const form = page.getByTestId("panel-form");
  await form.getByLabel("Title", { exact: true }).fill("Clicks and latency");
  await form.getByLabel("Kind", { exact: true }).selectOption("timeseries");
  const first = form.getByRole("group", { name: "Query 1" });
  await first.getByLabel("Metric", { exact: true }).selectOption("builtin:clickstream:records");
  await first.locator('input[name="statistics"][value="rate"]').check();

  // A second and a third query; the third is removed again.
  await form.getByRole("button", { name: "Add query" }).click();
  await form.getByRole("button", { name: "Add query" }).click();
  await expect(form.getByRole("group", { name: /^Query \d$/ })).toHaveCount(3);
  await form.getByRole("button", { name: "Remove query 3" }).click();
  await expect(form.getByRole("group", { name: /^Query \d$/ })).toHaveCount(2);
  const second = form.getByRole("group", { name: "Query 2" });
  await second.getByLabel("Metric", { exact: true }).selectOption("request_latency");
  await second.locator('input[name="statistics"][value="p99"]').check();
  // A refusal names the query it belongs to and shows at that query's field.
  await second.getByLabel("Series", { exact: true }).selectOption("top");
  await second.getByLabel("Top N").fill("50");
  await form.getByRole("button", { name: "Apply" }).click();
  await expect(second.locator('[data-error-for="queries[1].top"]')).toContainText("1 to 20 series");
  await expect(first.locator("[data-error-for]")).toHaveCount(0);
  await expect(second.getByLabel("Top N")).toHaveAttribute("aria-invalid", "true");
  await second.getByLabel("Series", { exact: true }).selectOption("all");
  // A stat panel reads one query: refused at the query list.
  await form.getByLabel("Kind", { exact: true }).selectOption("stat");
  await expect(form.getByRole("button", { name: "Add query" })).toHaveCount(0);
  await form.getByRole("button", { name: "Apply" }).click();
  await expect(form.locator('[data-error-for="queries"]')).toContainText("a stat panel reads one query");
  await form.getByLabel("Kind", { exact: true }).selectOption("timeseries");
  await form.getByRole("button", { name: "Apply" }).click();
  await expect(form).toHaveCount(0);

  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("save-status")).toHaveText("Saved.");
  const [stored] = await storedPanels(page, id);
  expect(stored.queries).toEqual([
    { metric: "builtin:clickstream:records", statistics: ["rate"] },
    { metric: "request_latency", statistics: ["p99"] },
  ]);

  // Reloaded: one line per query, both in the legend.
  await page.reload();
  await expect(page.locator('[data-state="connected"]')).toBeVisible();
  const chart = page.locator('section[data-panel="Clicks and latency"]');
  await expect(chart.locator("path[data-line]")).toHaveCount(2);
  const legend = chart.getByTestId("legend");
  await expect(legend).toContainText("builtin:clickstream:records rate");
  await expect(legend).toContainText("request_latency p99");

  // Editing the panel shows both queries again.
  await page.getByRole("button", { name: "Edit", exact: true }).click();
  await chart.getByRole("button", { name: "Edit panel" }).click();
  await expect(form.getByRole("group", { name: "Query 2" }).getByLabel("Metric", { exact: true })).toHaveValue("request_latency");
  expect(problems).toEqual([]);
});

test.describe("on a touch screen", () => {
  test.use({ hasTouch: true });

  test("a panel is dragged by touch", async ({ page }) => {
    const problems = watchForProblems(page);
    const created = await page.request.post("/api/v1/dashboards", {
      data: {
        name: "Touch board",
        panels: [{ title: "Touched", kind: "stat", x: 0, y: 0, w: 4, h: 2, queries: [{ metric: "builtin:clickstream:records" }] }],
      },
    });
    expect(created.status()).toBe(201);
    const { id } = await created.json();
    await page.goto(`/dashboards/${id}`);
    await expect(page.locator('[data-state="connected"]')).toBeVisible();
    await page.getByRole("button", { name: "Edit", exact: true }).click();
    const grid = (await page.getByTestId("grid").boundingBox())!;
    const column = (grid.width + 12) / 12;
    const panel = page.locator('section[data-panel="Touched"]');
    const title = (await panel.getByRole("heading", { name: "Touched" }).boundingBox())!;
    const at = { x: Math.round(title.x + 5), y: Math.round(title.y + title.height / 2) };
    // Real touch input through Chromium's protocol: the page sees pointerType "touch".
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [at] });
    for (let step = 1; step <= 10; step++) {
      const x = Math.round(at.x + (5 * column * step) / 10);
      await cdp.send("Input.dispatchTouchEvent", { type: "touchMove", touchPoints: [{ x, y: at.y }] });
    }
    await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
    await expect(panel).toHaveAttribute("style", /^grid-column:6 \/ span 4;grid-row:1 \/ span 2$/);
    await page.getByRole("button", { name: "Save" }).click();
    await expect(page.getByTestId("save-status")).toHaveText("Saved.");
    const [stored] = await storedPanels(page, id);
    expect([stored.x, stored.y]).toEqual([5, 0]);
    expect(problems).toEqual([]);
  });
});
