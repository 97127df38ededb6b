// Put-to-screen latency: a record put into the embedded Kinesis endpoint until its effect is in
// the page's DOM, in Debian's Chromium, while a producer puts a background load (default 20,000
// records/s) into the same stream. A benchmark, not a test: `make bench-put-to-screen`.
//
// How: `streamboard serve` (release build) with the embedded endpoint and no demo producer;
// `streamboard produce --demo clickstream --rate N` as the load; a count-only metric that
// matches only probe records (`exists /probe`); the metric's page open on its Series table.
// A MutationObserver in the page stamps the moment each new count is rendered; the script puts
// probe k (PutRecord over plain HTTP, as any SDK would) and takes the first render with a count
// >= k as its arrival. Probes go one at a time with a random 0-250 ms gap, so they do not
// phase-lock with the 250 ms live tick.
import { chromium } from "@playwright/test";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(process.env.STREAMBOARD_BIN ?? "target/release/streamboard");
const rate = Number(process.env.RATE ?? 20000);
const samples = Number(process.env.SAMPLES ?? 200);
const stream = "clickstream";
const metric = "put_to_screen_probe";

const freePort = () =>
  new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });

const children = [];
const start = (args, name) => {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  const keep = (chunk) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.on("exit", (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited early (${code ?? signal}):\n${tail}`);
      process.exit(1);
    }
  });
  children.push(child);
  return { child, tail: () => tail };
};
let stopping = false;
process.on("uncaughtException", async (error) => {
  console.error(error);
  await stopAll();
  process.exit(1);
});
process.on("unhandledRejection", async (error) => {
  console.error(error);
  await stopAll();
  process.exit(1);
});
const stopAll = async () => {
  stopping = true;
  await Promise.all(
    children.map(
      (c) =>
        new Promise((ok) => {
          if (c.exitCode !== null) return ok();
          c.once("exit", ok);
          c.kill("SIGINT");
        }),
    ),
  );
};

// Polls `check` until it returns a truthy value (a readiness wait with a deadline, not a delay).
const until = async (what, check, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

const port = await freePort();
const endpointPort = await freePort();
const base = `http://127.0.0.1:${port}`;
const endpoint = `http://127.0.0.1:${endpointPort}`;
const dataDir = mkdtempSync(join(tmpdir(), "streamboard-p2s-"));

start(
  [
    "serve",
    "--listen", `127.0.0.1:${port}`,
    "--data-dir", dataDir,
    "--embedded-listen", `127.0.0.1:${endpointPort}`,
    "--demo-rate", "0",
    "--log", "warn",
    // LIVE_TICK=150ms: the publisher's tick (default 250 ms), to see its share of the latency.
    ...(process.env.LIVE_TICK ? ["--live-tick", process.env.LIVE_TICK] : []),
    // LIVE_MIN_INTERVAL=250ms: the shortest interval between pushes when records arrive
    // (default 100 ms; equal to the tick pushes on the tick only, as before).
    ...(process.env.LIVE_MIN_INTERVAL ? ["--live-min-interval", process.env.LIVE_MIN_INTERVAL] : []),
    // EFO=1: read the stream with enhanced fan-out (SubscribeToShard) instead of polling.
    ...(process.env.EFO ? ["--efo"] : []),
  ],
  "serve",
);
await until("the server", async () => (await fetch(`${base}/healthz`)).ok);

const created = await fetch(`${base}/api/v1/metrics`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ name: metric, stream, filter: "exists /probe", unit: "count" }),
});
if (!created.ok) throw new Error(`creating the probe metric: ${created.status} ${await created.text()}`);

const load = start(
  ["produce", "--endpoint-url", endpoint, "--stream", stream, "--demo", "clickstream", "--rate", String(rate)],
  "produce",
);

const putProbe = async (k) => {
  const data = Buffer.from(JSON.stringify({ probe: k, ts: Date.now() })).toString("base64");
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "Kinesis_20131202.PutRecord",
      // The embedded endpoint requires the header and does not check signatures.
      authorization: "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/kinesis/aws4_request",
    },
    body: JSON.stringify({ StreamName: stream, Data: data, PartitionKey: `probe-${k}` }),
  });
  if (!response.ok) throw new Error(`PutRecord: ${response.status} ${await response.text()}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
await page.goto(`${base}/metric/${metric}?range=5m`);
// Hydrated and live: probe 0 (a warm-up, not measured) makes the Series table appear with
// count 1 (before any data the page shows an empty state).
await putProbe(0);
await page.getByTestId("series-count").waitFor({ timeout: 60_000 });

await page.evaluate(() => {
  window.__renders = [];
  const read = () => {
    const cell = document.querySelector('[data-testid="series-count"]');
    const count = cell ? Number(cell.textContent.replaceAll(",", "")) : 0;
    const last = window.__renders.at(-1);
    if (!last || last.count !== count) window.__renders.push({ count, at: Date.now() });
  };
  new MutationObserver(read).observe(document.body, {
    subtree: true,
    childList: true,
    characterData: true,
  });
  read();
});

const putAt = [];
for (let k = 1; k <= samples; k++) {
  await new Promise((r) => setTimeout(r, Math.random() * 250));
  putAt[k] = Date.now();
  await putProbe(k);
  // Probe k counts as the (k + 1)th probe record (probe 0 was the warm-up).
  await page.waitForFunction((n) => (window.__renders.at(-1)?.count ?? 0) >= n, k + 1, {
    polling: 50,
    timeout: 30_000,
  });
  if (k % 50 === 0) process.stderr.write(`  ${k}/${samples} probes\n`);
}
const renders = await page.evaluate(() => window.__renders);
const latencies = [];
for (let k = 1; k <= samples; k++) {
  const render = renders.find((r) => r.count >= k + 1);
  latencies.push(render.at - putAt[k]);
}
await browser.close();
await stopAll();
const produced = load.tail().trim().split("\n").filter(Boolean).at(-1) ?? "";
rmSync(dataDir, { recursive: true, force: true });

latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)];
console.log(
  `put-to-screen latency, ${samples} probes, background load ${rate} records/s into ${stream}, ` +
    `live tick ${process.env.LIVE_TICK ?? "250ms (default)"}, ` +
    `min interval ${process.env.LIVE_MIN_INTERVAL ?? "100ms (default)"}`,
);
console.log(`  producer: ${produced}`);
console.log(`  p50 ${q(0.5)} ms  p90 ${q(0.9)} ms  p99 ${q(0.99)} ms  max ${latencies.at(-1)} ms`);
