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
  await form.getByRole("button", { name: "Preview", exact: true }).click();
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
  await page.getByRole("link", { name: "Dashboard", exact: true }).click();
  await expect(page.getByTestId("alert-badge")).toHaveAttribute("data-count", "1");

  // The only refused request is the one the test provoked.
  const provoked = (p: string) =>
    (p.startsWith("422 ") && p.endsWith("/api/v1/alerts")) ||
    p === "console error: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)";
  expect(problems.filter((p) => !provoked(p))).toEqual([]);
  expect(problems.filter((p) => p.startsWith("422 "))).toHaveLength(1);
});

// A real webhook receiver on loopback for the test send.
async function startReceiver(): Promise<{ url: string; bodies: string[]; close: () => void }> {
  const http = await import("node:http");
  const bodies: string[] = [];
  const server = http.createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      bodies.push(body);
      response.writeHead(202, { "content-type": "text/plain" });
      response.end("got it");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/hook`, bodies, close: () => server.close() };
}

test("the form backtests a draft rule, previews its template and sends a test notification", async ({ page }) => {
  const problems = watchForProblems(page);
  const receiver = await startReceiver();
  await page.goto("/alerts");
  await expect(page.locator('[data-state="connected"]')).toBeVisible();

  await page.getByTestId("new-rule").click();
  const form = page.getByTestId("rule-form");
  await form.getByLabel("Name").fill("records flowing");
  await form.getByLabel("Metric").fill("builtin:clickstream:records");
  await form.getByLabel("Statistic").selectOption("rate");
  await form.getByLabel("Window (1s–60s, or 1m–60m)").fill("5s");
  await form.getByLabel("Threshold", { exact: true }).fill("1");

  // Backtest over the last hour of stored history: the demo data fires it.
  await form.getByLabel("Backtest range").selectOption("1h");
  await form.getByRole("button", { name: "Backtest" }).click();
  const backtest = page.getByRole("region", { name: "Backtest" });
  await expect(backtest.getByTestId("backtest-summary")).toContainText("notifications it would have sent");
  await expect(backtest.getByTestId("backtest-chart")).toBeVisible();
  await expect(backtest.locator('[data-band="firing"]').first()).toBeAttached();
  const transitions = backtest.getByRole("list", { name: "Backtest transitions" });
  await expect(transitions.locator('li[data-to="firing"]').first()).toBeVisible();

  // Preview the in-app text of the backtest's firing transition.
  await form.getByLabel("In-app text").fill("{{ rule }} went {{ to }}");
  await transitions.locator('li[data-to="firing"]').first().getByRole("button", { name: "Render notification" }).click();
  await form.getByLabel("Target", { exact: true }).selectOption("in_app");
  await form.getByRole("button", { name: "Preview notification" }).click();
  await expect(page.getByTestId("notification-text")).toHaveText("records flowing went firing");

  // A template error is shown at its field.
  await form.getByLabel("In-app text").fill("{{ rule }");
  await form.getByRole("button", { name: "Preview notification" }).click();
  await expect(form.locator('[data-error-for="templates.in_app"]')).toContainText("syntax error");
  await form.getByLabel("In-app text").fill("");

  // Send a test notification to a real receiver and show its answer.
  await form.getByLabel("Webhook URL").fill(receiver.url);
  await form.getByLabel("Webhook body").fill('{"text": {{ (rule ~ " is " ~ to)|tojson }}}');
  await form.getByLabel("Target", { exact: true }).selectOption("webhook");
  await form.getByRole("button", { name: "Send test notification" }).click();
  await expect(page.getByTestId("test-send-result")).toHaveText("Delivered: HTTP 202");
  await expect(page.getByTestId("receiver-answer")).toHaveText("got it");
  expect(receiver.bodies.map((b) => JSON.parse(b))).toEqual([{ text: "records flowing is firing" }]);
  receiver.close();

  const provoked = (p: string) =>
    (p.startsWith("422 ") && p.endsWith("/api/v1/alerts/notification/preview")) ||
    p === "console error: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)";
  expect(problems.filter((p) => !provoked(p))).toEqual([]);
});

test("rules are paused, resumed, duplicated, exported and imported from the list; charts show when they fired", async ({ page }) => {
  const problems = watchForProblems(page);
  await page.goto("/alerts");
  await expect(page.locator('[data-state="connected"]')).toBeVisible();
  const rules = page.getByRole("table", { name: "Alert rules" });
  const row = rules.locator('tr[data-rule="clickstream flowing"]');
  await expect(row).toBeVisible();

  await row.getByRole("button", { name: "Pause" }).click();
  await expect(row).toContainText("paused");
  await row.getByRole("button", { name: "Resume" }).click();
  await expect(row.getByRole("button", { name: "Pause" })).toBeVisible();
  await expect(row).not.toContainText("paused");

  await row.getByRole("button", { name: "Duplicate" }).click();
  const copy = rules.locator('tr[data-rule="clickstream flowing (copy)"]');
  await expect(copy).toContainText("paused");

  // Export as TOML: the config file's [[alerts]] tables.
  await page.getByText("Export and import rules").click();
  await expect(page.getByRole("link", { name: "Export TOML" })).toHaveAttribute("href", "/api/v1/alerts/export?format=toml");
  const exported = await (await page.request.get("/api/v1/alerts/export?format=toml")).text();
  expect(exported).toContain("[[alerts]]");
  expect(exported).toContain('name = "clickstream flowing (copy)"');

  // Import a renamed copy; a broken file names the rule and the field.
  const renamed = exported
    .split("[[alerts]]")
    .filter((t) => t.includes('name = "clickstream flowing"'))
    .map((t) => "[[alerts]]" + t.replace('name = "clickstream flowing"', 'name = "imported rule"'))
    .join("");
  const box = page.getByLabel("Rules file");
  await box.fill(renamed.replace(/threshold = [^\n]+/, 'threshold = "high"'));
  await page.getByRole("button", { name: "Import" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "alerts[0].threshold" })).toContainText('rule "imported rule"');
  await box.fill(renamed);
  await page.getByRole("button", { name: "Import" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Imported" })).toHaveText("Imported: 1 created, 0 replaced.");
  await expect(rules.locator('tr[data-rule="imported rule"]')).toBeVisible();

  // A metric's charts draw the periods its rules were pending or firing.
  const created = await page.request.post("/api/v1/alerts", {
    data: { name: "latency seen", metric: "request_latency", statistic: "count", window: "5s", comparison: ">", threshold: 0 },
  });
  expect(created.status()).toBe(201);
  await page.goto("/metric/request_latency");
  for (const chart of ["Rate", "Percentiles"]) {
    const band = page.getByRole("img", { name: chart }).getByTestId("alert-band").first();
    await expect(band).toBeAttached();
    await expect(band).toContainText("latency seen firing");
  }

  const provoked = (p: string) =>
    (p.startsWith("422 ") && p.includes("/api/v1/alerts/import")) ||
    p === "console error: Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)";
  expect(problems.filter((p) => !provoked(p))).toEqual([]);
});
