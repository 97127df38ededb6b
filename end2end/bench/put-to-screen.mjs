// Put-to-screen latency benchmark (not a test): how long from a record put into a Kinesis
// endpoint until its effect is in the page's DOM, while a producer loads the same endpoint.
//
//   node end2end/bench/put-to-screen.mjs [--rate 20000] [--markers 60] [--idle-poll 200ms]
//
// Parts, all real and on loopback: `streamboard endpoint` (the Kinesis-compatible server),
// `streamboard produce --demo clickstream --rate N` (the load, into stream `load`),
// `streamboard serve` reading `load` and `markers`, and Chromium on the metric page of a
// `marker` metric (a count on stream `markers`). Each marker is one PutRecord sent straight to
// the endpoint; its put time is taken just before the request. In the page a MutationObserver
// notes when the marker metric's 1-minute count first reaches k, i.e. when marker k is on
// screen. Prints p50/p90/p99/max of the latencies.
import { chromium } from "playwright";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const rate = Number(args.rate ?? 20000);
const markers = Number(args.markers ?? 60);
const idlePoll = args["idle-poll"] ?? "200ms";
const bin = process.env.STREAMBOARD_BIN ?? new URL("../../target/release/streamboard", import.meta.url).pathname;

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];
const start = (name, argv) => {
  const child = spawn(bin, argv, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr.on("data", (d) => {
    if (process.env.VERBOSE) process.stderr.write(`[${name}] ${d}`);
  });
  children.push(child);
  return child;
};
const stopAll = () => children.forEach((c) => c.kill("SIGTERM"));
process.on("exit", stopAll);

const endpointPort = await freePort();
const servePort = await freePort();
const endpoint = `http://127.0.0.1:${endpointPort}`;

async function kinesis(operation, body) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": `Kinesis_20131202.${operation}`,
      // The embedded endpoint wants SigV4's shape but does not check signatures.
      authorization: "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
      "x-amz-date": "20260101T000000Z",
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${operation}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

async function until(what, check, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

start("endpoint", ["endpoint", "--listen", `127.0.0.1:${endpointPort}`, "--data-dir", mkdtempSync(join(tmpdir(), "p2s-endpoint-"))]);
await until("the endpoint", async () => (await kinesis("ListStreams", {})) !== null);
for (const [name, shards] of [["load", 4], ["markers", 1]]) {
  await kinesis("CreateStream", { StreamName: name, ShardCount: shards });
  await until(`${name} ACTIVE`, async () =>
    (await kinesis("DescribeStreamSummary", { StreamName: name })).StreamDescriptionSummary.StreamStatus === "ACTIVE");
}
start("serve", [
  "serve", "--listen", `127.0.0.1:${servePort}`, "--data-dir", mkdtempSync(join(tmpdir(), "p2s-serve-")),
  "--kinesis-endpoint", endpoint, "--stream", "load", "--stream", "markers", "--start", "latest",
  "--idle-poll-interval", idlePoll,
]);
const base = `http://127.0.0.1:${servePort}`;
await until("serve", async () => (await fetch(`${base}/healthz`)).ok);
const created = await fetch(`${base}/api/v1/metrics`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ name: "marker", stream: "markers" }),
});
if (!created.ok) throw new Error(`creating the marker metric: ${created.status} ${await created.text()}`);
start("produce", ["produce", "--endpoint-url", endpoint, "--stream", "load", "--demo", "clickstream", "--rate", String(rate)]);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage();
await page.goto(`${base}/metric/marker`);
await page.locator('[data-state="connected"]').waitFor();
// Let the load reach its rate and the readers catch up before measuring.
await sleep(5_000);
await page.evaluate(() => {
  window.__reached = [];
  const read = () => {
    const cell = document.querySelector('table[aria-label="Series"] td[data-field="count"]');
    const n = cell ? Number(cell.textContent) : 0;
    const now = Date.now();
    for (let k = window.__reached.length + 1; k <= n; k++) window.__reached.push(now);
  };
  new MutationObserver(read).observe(document.body, { subtree: true, childList: true, characterData: true });
  read();
});

const putAt = [];
for (let k = 1; k <= markers; k++) {
  putAt.push(Date.now());
  await kinesis("PutRecord", { StreamName: "markers", PartitionKey: `m${k}`, Data: Buffer.from(JSON.stringify({ k })).toString("base64") });
  await sleep(200 + Math.random() * 100); // markers well inside the 1-minute window
}
await until("every marker on screen", async () => (await page.evaluate(() => window.__reached.length)) >= markers, 30_000);
const reached = await page.evaluate(() => window.__reached);
const latencies = putAt.map((t, i) => reached[i] - t).sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)];
const load = await (await fetch(`${base}/metrics`)).text();
console.log(JSON.stringify({
  load_records_per_s: rate,
  idle_poll: idlePoll,
  markers,
  p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: latencies.at(-1),
}));
void load;
await browser.close();
stopAll();
process.exit(0);
