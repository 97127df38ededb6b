// A spec's own `streamboard serve` on free loopback ports with its own data directory, for
// specs that restart the server or put records into its embedded Kinesis endpoint.
import { expect } from "@playwright/test";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";

const bin = process.env.STREAMBOARD_BIN ?? "../target/debug/streamboard";

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Starts `streamboard serve` on `port` and waits until `/healthz` answers 200. */
export async function serve(port: number, dataDir: string, extra: string[]): Promise<ChildProcess> {
  const child = spawn(bin, ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, ...extra], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  await expect
    .poll(async () => {
      if (child.exitCode !== null) throw new Error(`streamboard exited: ${stderr}`);
      return fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status).catch(() => 0);
    }, { timeout: 30_000 })
    .toBe(200);
  return child;
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

/** PutRecords of JSON documents into `stream` at a Kinesis-compatible endpoint (at most 500). */
export async function putRecords(endpoint: string, stream: string, docs: { key: string; data: unknown }[]): Promise<void> {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "Kinesis_20131202.PutRecords",
      // The embedded endpoint requires the header and does not check signatures.
      authorization: "AWS4-HMAC-SHA256 Credential=e2e/20260101/us-east-1/kinesis/aws4_request",
    },
    body: JSON.stringify({
      StreamName: stream,
      Records: docs.map((d) => ({
        PartitionKey: d.key,
        Data: Buffer.from(typeof d.data === "string" ? d.data : JSON.stringify(d.data)).toString("base64"),
      })),
    }),
  });
  if (!response.ok) throw new Error(`PutRecords: ${response.status} ${await response.text()}`);
  const answer = await response.json();
  if (answer.FailedRecordCount !== 0) throw new Error(`PutRecords: ${JSON.stringify(answer)}`);
}
