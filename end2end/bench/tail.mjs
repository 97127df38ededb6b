// The live record tail of a 20,000 records/s stream: what one viewer costs the server, whether
// the server's memory stays bounded while it tails, and the browser's frame time on the Records
// page. A benchmark, not a test: `make bench-tail`.
//
// How: three release processes: `streamboard endpoint` (the built-in Kinesis endpoint),
// `streamboard produce --demo clickstream --rate N` into it, and `streamboard serve` reading
// the stream from it (no demo producer). Phases:
//   1. no viewer: the server's and the endpoint's CPU (/proc utime + stime) over BASELINE_S
//      (default 20 s);
//   2. Chromium on /streams/clickstream/records (no filter): requestAnimationFrame intervals,
//      long tasks (PerformanceObserver 'longtask'), the JS heap (CDP Performance.getMetrics)
//      and the wasm memory at the start and end of FRAMES_S (default 30 s), and the CPU over
//      the same span;
//   3. the page left open for MEMORY_S (default 180 s) more: the server's RSS every 10 s.
// The rates come from the page's own figures (`tail-rates`: read/s is the tail's, so the
// stream's). Prints the load average at the start and the end.
import { chromium } from "@playwright/test";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const bin = resolve(process.env.STREAMBOARD_BIN ?? "target/release/streamboard");
const rate = Number(process.env.RATE ?? 20000);
const baselineS = Number(process.env.BASELINE_S ?? 20);
const framesS = Number(process.env.FRAMES_S ?? 30);
const memoryS = Number(process.env.MEMORY_S ?? 180);
const stream = "clickstream";

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
let stopping = false;
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
// Newest first (the server, the producer, then the endpoint they use); a process still
// running 10 s after SIGINT is killed.
const stopAll = async () => {
  stopping = true;
  for (const c of children.reverse()) {
    await new Promise((ok) => {
      if (c.exitCode !== null || c.signalCode !== null) return ok();
      const kill = setTimeout(() => c.kill("SIGKILL"), 10_000);
      c.once("exit", () => {
        clearTimeout(kill);
        ok();
      });
      c.kill("SIGINT");
    });
  }
};
for (const event of ["uncaughtException", "unhandledRejection"]) {
  process.on(event, async (error) => {
    console.error(error);
    await stopAll();
    process.exit(1);
  });
}

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
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

// A process's CPU seconds (utime + stime) and RSS in MiB, from /proc.
const ticksPerS = 100;
const cpuS = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerS;
};
const rssMiB = (pid) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8")
    .split("\n")
    .find((l) => l.startsWith("VmRSS:"));
  return Number(line.split(/\s+/)[1]) / 1024;
};
// Each process's share of a core over the next `seconds`.
const cpuShares = async (pids, seconds) => {
  const [c0, t0] = [pids.map(cpuS), performance.now()];
  await wait(seconds * 1000);
  const elapsedS = (performance.now() - t0) / 1000;
  return pids.map((pid, i) => (cpuS(pid) - c0[i]) / elapsedS);
};
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

const loadAtStart = load();
const port = await freePort();
const endpointPort = await freePort();
const base = `http://127.0.0.1:${port}`;
const endpoint = `http://127.0.0.1:${endpointPort}`;
const dataDir = mkdtempSync(join(tmpdir(), "streamboard-tail-"));

const endpointProcess = start(
  ["endpoint", "--listen", `127.0.0.1:${endpointPort}`, "--data-dir", join(dataDir, "endpoint"), "--log", "warn"],
  "endpoint",
);
await until("the endpoint", async () => (await fetch(endpoint, { method: "POST" })).status > 0);
const producer = start(
  [
    "produce", "--endpoint-url", endpoint, "--stream", stream, "--create-stream", "--shards", "2",
    "--demo", "clickstream", "--rate", String(rate),
  ],
  "produce",
);
// The producer creates the stream; the server starts once it is there.
await until("the stream", async () => {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "Kinesis_20131202.DescribeStreamSummary",
      // The endpoint requires the header and does not check signatures.
      authorization: "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/kinesis/aws4_request",
    },
    body: JSON.stringify({ StreamName: stream }),
  });
  return response.ok && (await response.json()).StreamDescriptionSummary?.StreamStatus === "ACTIVE";
});
const serve = start(
  [
    "serve",
    "--listen", `127.0.0.1:${port}`,
    "--data-dir", join(dataDir, "serve"),
    "--kinesis-endpoint", endpoint,
    "--stream", stream,
    "--demo-rate", "0",
    "--log", "warn",
  ],
  "serve",
);
await until("the server", async () => (await fetch(`${base}/healthz`)).ok);
const serverPid = serve.child.pid;
const endpointPid = endpointProcess.child.pid;
const producerPid = producer.child.pid;
// Let the producer and the consumer reach their pace before measuring.
await wait(10_000);

const producerCpu0 = cpuS(producerPid);
const producerT0 = performance.now();
const [baselineCpu, baselineEndpointCpu] = await cpuShares([serverPid, endpointPid], baselineS);
const baselineRss = rssMiB(serverPid);
process.stderr.write(`  baseline: server ${(baselineCpu * 100).toFixed(1)} % of a core\n`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
await page.addInitScript(() => {
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
  }).observe({ type: "longtask", buffered: true });
});
await page.goto(`${base}/streams/${stream}/records`);
await page.getByTestId("record").first().waitFor({ timeout: 60_000 });
const cdp = await page.context().newCDPSession(page);
await cdp.send("Performance.enable");
const metrics = async () => {
  const { metrics } = await cdp.send("Performance.getMetrics");
  const get = (name) => metrics.find((m) => m.name === name)?.value ?? 0;
  // wasm-bindgen's init answers the instance's exports once it is initialised.
  const wasmMiB = await page.evaluate(async () => {
    const module = await import("/pkg/streamboard.js");
    return (await module.default()).memory.buffer.byteLength / 2 ** 20;
  });
  return { heapMiB: get("JSHeapUsedSize") / 2 ** 20, nodes: get("Nodes"), wasmMiB };
};
const heapStart = await metrics();

await page.evaluate(() => {
  window.__frames = [];
  window.__longTasks = [];
  // Rows inserted into the list: new records, and rows the keyed list moves.
  window.__recordsAdded = 0;
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      for (const node of m.addedNodes) {
        if (node.dataset?.testid === "record") window.__recordsAdded += 1;
      }
    }
  }).observe(document.querySelector('section[aria-label="Records"]'), { childList: true });
  let last = performance.now();
  const tick = (now) => {
    window.__frames.push(now - last);
    last = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
});
const [viewingCpu, viewingEndpointCpu] = await cpuShares([serverPid, endpointPid], framesS);
const { frames, longTasks, seen, rates, rows } = await page.evaluate(() => ({
  frames: window.__frames.slice(1),
  longTasks: window.__longTasks,
  seen: window.__recordsAdded,
  rates: document.querySelector('[data-testid="tail-rates"]')?.textContent ?? "",
  rows: document.querySelectorAll('[data-testid="record"]').length,
}));
const heapEnd = await metrics();

// Memory: the page keeps tailing; the server's RSS every 10 s.
const rss = [baselineRss, rssMiB(serverPid)];
for (let s = 0; s < memoryS; s += 10) {
  await wait(10_000);
  rss.push(rssMiB(serverPid));
}
const heapLast = await metrics();
const producerShare =
  (cpuS(producerPid) - producerCpu0) / ((performance.now() - producerT0) / 1000);
await browser.close();
await stopAll();
rmSync(dataDir, { recursive: true, force: true });

frames.sort((a, b) => a - b);
const q = (p) => frames[Math.min(frames.length - 1, Math.ceil(p * frames.length) - 1)];
const f1 = (n) => n.toFixed(1);
console.log(`live record tail, ${stream} at ${rate} records/s asked, one viewer on /streams/${stream}/records`);
console.log(`  load average at start ${loadAtStart}, at end ${load()}`);
console.log(`  page figures at the end of the frame phase: ${rates}`);
console.log(
  `  CPU, share of a core: server ${f1(baselineCpu * 100)} % with no viewer, ${f1(viewingCpu * 100)} % with one; ` +
    `endpoint ${f1(baselineEndpointCpu * 100)} % / ${f1(viewingEndpointCpu * 100)} %; producer ${f1(producerShare * 100)} % over the run`,
);
console.log(
  `  frames (${framesS} s, ${frames.length} frames): p50 ${f1(q(0.5))} ms  p99 ${f1(q(0.99))} ms  max ${f1(frames.at(-1))} ms; ` +
    `long tasks ${longTasks.length} (total ${f1(longTasks.reduce((a, b) => a + b, 0))} ms, max ${f1(Math.max(0, ...longTasks))} ms)`,
);
console.log(`  record rows inserted during the frame phase (new or moved): ${seen}; rows on the page at its end: ${rows}`);
console.log(
  `  JS heap: ${f1(heapStart.heapMiB)} MiB at start, ${f1(heapEnd.heapMiB)} MiB after ${framesS} s, ${f1(heapLast.heapMiB)} MiB after ${framesS + memoryS} s; ` +
    `wasm memory ${f1(heapStart.wasmMiB)} / ${f1(heapEnd.wasmMiB)} / ${f1(heapLast.wasmMiB)} MiB; ` +
    `DOM nodes ${heapStart.nodes} / ${heapEnd.nodes} / ${heapLast.nodes}`,
);
console.log(`  server RSS (MiB, no viewer, then every 10 s with the viewer): ${rss.map((r) => r.toFixed(0)).join(" ")}`);
