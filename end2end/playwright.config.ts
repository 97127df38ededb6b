// End-to-end tests: the built `streamboard` binary on its own loopback port with a fresh data
// directory, driven in Debian's Chromium. `make e2e` sets STREAMBOARD_BIN and E2E_PORT.
import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = process.env.STREAMBOARD_BIN ?? "../target/debug/streamboard";
const port = Number(process.env.E2E_PORT ?? "3999");
const dataDir = mkdtempSync(join(tmpdir(), "streamboard-e2e-"));

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    // The alerts spec's webhook receiver listens on loopback, an internal address that
    // webhooks may reach only when allowed.
    command: `${bin} serve --listen 127.0.0.1:${port} --data-dir ${dataDir} --alerts-webhook-allow 127.0.0.1`,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
  },
});
