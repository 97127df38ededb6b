import { expect, test, type Page } from "@playwright/test";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { watchForProblems } from "./problems";

// Password auth on a server of its own (the suite's shared server runs with `--auth none`):
// users are added with `streamboard user add`; sessions last 15 s so expiry can be seen.
const bin = process.env.STREAMBOARD_BIN ?? "../target/debug/streamboard";
let dataDir: string;
const PASSWORD = "correct horse battery";
let server: ChildProcess;
let base: string;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject()));
    });
  });
}

function addUser(name: string, role: string) {
  execFileSync(bin, ["user", "add", name, "--role", role, "--data-dir", dataDir], {
    input: `${PASSWORD}\n`,
  });
}

test.beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "streamboard-e2e-auth-"));
  addUser("ada", "admin");
  addUser("vic", "viewer");
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, [
    "serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--auth", "password",
    "--session-ttl", "15s", "--demo-rate", "5", "--embedded-listen", "127.0.0.1:0",
  ], { stdio: "ignore" });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error("the auth server did not start");
    await new Promise((r) => setTimeout(r, 200));
  }
});

test.afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function logIn(page: Page, name: string, next = "/") {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("User name").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
}

test("anonymous visitors are sent to the login form, and a wrong password is named", async ({ page }) => {
  await page.goto(`${base}/alerts`);
  await expect(page).toHaveURL(/\/login\?next=\/alerts$/);
  await page.getByLabel("User name").fill("ada");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("login-error")).toHaveText("Wrong user name or password.");
});

test("an admin logs in, sees the pages and the admin page, and logs out", async ({ page }) => {
  const problems = watchForProblems(page);
  await logIn(page, "ada", "/alerts");
  await expect(page).toHaveURL(`${base}/alerts`);
  await expect(page.getByRole("heading", { level: 1, name: "Alerts" })).toBeVisible();
  await expect(page.getByRole("status", { name: "Connection" })).toHaveAttribute("data-state", "connected");
  await expect(page.getByTestId("whoami")).toHaveText("ada (admin)");
  await expect(page.getByTestId("new-rule")).toBeVisible();

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Admin" }).click();
  await expect(page.getByRole("table", { name: "Users" })).toContainText("vic");
  await page.locator('input[name="token-name"]').fill("ci");
  await page.getByRole("button", { name: "Create token" }).click();
  await expect(page.getByTestId("new-token")).toContainText("sbt_");
  await expect(page.locator('tr[data-token="ci"]')).toContainText("unused");
  expect(problems).toEqual([]);

  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(`${base}/login`);
  await page.goto(`${base}/`);
  await expect(page).toHaveURL(/\/login\?next=\/$/);
});

test("a viewer sees the pages but not the rule form, and the API refuses its writes", async ({ page }) => {
  await logIn(page, "vic", "/alerts");
  await expect(page.getByRole("heading", { level: 1, name: "Alerts" })).toBeVisible();
  await expect(page.getByRole("status", { name: "Connection" })).toHaveAttribute("data-state", "connected");
  await expect(page.getByTestId("new-rule")).toHaveCount(0);
  await expect(page.getByTestId("rule-form")).toHaveCount(0);
  // The rule API, from the page itself (same origin, the viewer's own cookie).
  const status = await page.evaluate(async () => {
    const response = await fetch("/api/v1/alerts", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "x", metric: "builtin:clickstream:records", statistic: "rate", window: "10s", op: ">", threshold: 1 }),
    });
    return response.status;
  });
  expect(status).toBe(403);
  const editor = await page.goto(`${base}/metrics/new`);
  expect(editor?.status()).toBe(403);
  const admin = await page.goto(`${base}/admin`);
  expect(admin?.status()).toBe(403);
});

test("an expired session goes back to the login form", async ({ page }) => {
  test.setTimeout(60_000);
  await logIn(page, "vic", "/streams");
  await expect(page.getByRole("heading", { level: 1, name: "Streams" })).toBeVisible();
  // Sessions last 15 s here: reload until the server no longer knows the session.
  await expect(async () => {
    await page.goto(`${base}/streams`);
    await expect(page).toHaveURL(/\/login\?next=\/streams$/, { timeout: 100 });
  }).toPass({ timeout: 40_000, intervals: [1_000] });
  await expect(page.getByRole("heading", { name: "Log in to Streamboard" })).toBeVisible();
});
