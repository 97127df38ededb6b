#!/usr/bin/env bash
# The long run of `make soak`: the real binary for DURATION_S seconds at RATE records/s, with
# retention shortened so rows expire during the run, sampling the server's RSS, the database's
# size and the consumer's lag. Writes samples.csv and a chart (soak-long.svg) into OUT_DIR and
# fails when RSS or the database keep growing in the run's last quarter, when the records put
# are not all counted, or when SQLite's integrity check finds a problem.
#
#   scripts/soak-long.sh                  # 1 h at 5,000 records/s
#   DURATION_S=600 RATE=2000 scripts/soak-long.sh
#
# Everything listens on loopback ports chosen at start; the processes started here are
# stopped by their pids when the run ends (or is interrupted).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${STREAMBOARD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/streamboard}
DURATION_S=${DURATION_S:-3600}
RATE=${RATE:-5000}
SAMPLE_S=${SAMPLE_S:-15}
OUT_DIR=${OUT_DIR:-$ROOT/target/soak-long}
# Short retention: 1-second rows 5 min, 1-minute rows 15 min, 1-hour rows 30 min.
RETENTION_1S=${RETENTION_1S:-5m}
RETENTION_1M=${RETENTION_1M:-15m}
RETENTION_1H=${RETENTION_1H:-30m}

[ -x "$BIN" ] || { echo "soak-long: no binary at $BIN (build it first)" >&2; exit 1; }
mkdir -p "$OUT_DIR"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 1" INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # url what
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "soak-long: $2 did not come up at $1" >&2
  exit 1
}

export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true
export STREAMBOARD_LOG=${STREAMBOARD_LOG:-warn}
ENDPOINT_PORT=$(free_port)
SERVE_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$ENDPOINT_PORT
STREAM=soak

"$BIN" endpoint --listen "127.0.0.1:$ENDPOINT_PORT" --data-dir "$WORK/endpoint" 2>"$OUT_DIR/endpoint.log" &
PIDS+=($!)
# Any 4xx answer means it is up (an unsigned GET is refused).
for _ in $(seq 1 200); do
  curl -s -o /dev/null "$ENDPOINT" && break
  sleep 0.1
done

cat >"$WORK/streamboard.toml" <<EOF
[[streams]]
name = "$STREAM"
start = "trim_horizon"

[[metrics]]
name = "latency"
stream = "$STREAM"
value = "/latency_ms"
dimensions = ["/region", "/path"]
unit = "ms"

[[metrics]]
name = "bytes"
stream = "$STREAM"
value = "/bytes"
dimensions = ["/region"]
unit = "bytes"

[[metrics]]
name = "server_errors"
stream = "$STREAM"
filter = "/status >= 500"
dimensions = ["/path"]
EOF

# The stream first, so the server finds it at start-up.
"$BIN" produce --endpoint-url "$ENDPOINT" --stream "$STREAM" --create-stream --shards 2 --count 1 \
  --demo clickstream --rate 1 >/dev/null 2>&1
COUNT=$((DURATION_S * RATE))

"$BIN" serve --config "$WORK/streamboard.toml" --data-dir "$WORK/data" \
  --listen "127.0.0.1:$SERVE_PORT" --kinesis-endpoint "$ENDPOINT" \
  --retention-1s "$RETENTION_1S" --retention-1m "$RETENTION_1M" --retention-1h "$RETENTION_1H" \
  2>"$OUT_DIR/serve.log" &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
wait_http "http://127.0.0.1:$SERVE_PORT/healthz" "streamboard serve"

"$BIN" produce --endpoint-url "$ENDPOINT" --stream "$STREAM" --demo clickstream --rate "$RATE" \
  --count "$COUNT" --seed 1 >"$OUT_DIR/produce.log" 2>&1 &
PRODUCE_PID=$!
PIDS+=("$PRODUCE_PID")

db_bytes() { du -cb "$WORK/data"/streamboard.db* 2>/dev/null | tail -1 | cut -f1; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVE_PID/status"; }
lag_ms() {
  curl -fsS "http://127.0.0.1:$SERVE_PORT/metrics" 2>/dev/null \
    | awk '/^streamboard_consumer_millis_behind_latest/ { if ($2 > m) m = $2 } END { print m + 0 }'
}
records_counted() {
  curl -fsS "http://127.0.0.1:$SERVE_PORT/metrics" 2>/dev/null \
    | awk '/^streamboard_consumer_records_total/ { s += $2 } END { print s + 0 }'
}

echo "elapsed_s,rss_kib,db_bytes,lag_ms,records" >"$OUT_DIR/samples.csv"
START=$(date +%s)
echo "soak-long: $DURATION_S s at $RATE records/s; samples in $OUT_DIR/samples.csv"
while :; do
  NOW=$(date +%s)
  ELAPSED=$((NOW - START))
  echo "$ELAPSED,$(rss_kib),$(db_bytes),$(lag_ms),$(records_counted)" >>"$OUT_DIR/samples.csv"
  [ "$ELAPSED" -ge "$DURATION_S" ] && break
  kill -0 "$SERVE_PID" 2>/dev/null || { echo "soak-long: serve exited" >&2; exit 1; }
  sleep "$SAMPLE_S"
done

# The producer stops (it may be behind its rate on a busy machine) and says how many records it
# put; the consumer catches up with them.
kill -TERM "$PRODUCE_PID" 2>/dev/null || true
wait "$PRODUCE_PID" || true
PUT=$(sed -n 's/.* \([0-9][0-9]*\) records sent.*/\1/p' "$OUT_DIR/produce.log" | tail -1)
[ -n "$PUT" ] || { echo "soak-long: the producer did not report what it put" >&2; exit 1; }
TOTAL=$((PUT + 1))
echo "soak-long: $(tail -1 "$OUT_DIR/produce.log")"
for _ in $(seq 1 600); do
  [ "$(records_counted)" -ge "$TOTAL" ] && break
  sleep 0.5
done
COUNTED=$(records_counted)
kill -TERM "$SERVE_PID"
wait "$SERVE_PID" || true

INTEGRITY=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$WORK/data/streamboard.db")
python3 "$ROOT/scripts/soak-chart.py" "$OUT_DIR/samples.csv" "$OUT_DIR/soak-long.svg" \
  "Streamboard, ${DURATION_S} s at ${RATE} records/s, retention 1s/1m/1h = $RETENTION_1S/$RETENTION_1M/$RETENTION_1H"
echo "soak-long: records put $TOTAL, counted by the consumer $COUNTED; integrity_check: $INTEGRITY"
python3 "$ROOT/scripts/soak-chart.py" --check "$OUT_DIR/samples.csv"
[ "$INTEGRITY" = ok ] || { echo "soak-long: integrity check failed" >&2; exit 1; }
[ "$COUNTED" -ge "$TOTAL" ] || { echo "soak-long: $COUNTED of $TOTAL records counted" >&2; exit 1; }
echo "soak-long: passed"
