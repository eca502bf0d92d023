#!/bin/bash
# make soak: 10,000 simulated nodes against the hub for 30 minutes, with a
# steady stream of QoS 1 events. The hub's memory and database growth are
# sampled every 30 s into build/soak/samples.csv. The run fails if
#   - any event the broker acknowledged is missing from the database, or
#   - the hub's resident memory keeps growing: the mean of the last third
#     of the samples may exceed the mean of the middle third by at most
#     SOAK_GROWTH_PCT (default 10) percent.
# Knobs: SOAK_MINUTES (30), BENCH_NODES (10000), BENCH_INTERVAL_S (10),
# SOAK_EVENT_RATE (20 events/s).
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES=${SOAK_MINUTES:-30}
NODES=${BENCH_NODES:-10000}
INTERVAL=${BENCH_INTERVAL_S:-10}
EVENT_RATE=${SOAK_EVENT_RATE:-20}
GROWTH=${SOAK_GROWTH_PCT:-10}
PROBES=50
LOADERS=1
SAY=soak
OUT=build/rel
B=$PWD/$OUT/bin
RUN=$PWD/build/soak
PY=/usr/bin/python3

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
# shellcheck source=scripts/lib/stack.sh
. scripts/lib/stack.sh

make --no-print-directory -s OUT=$OUT all $OUT/bin/bench-probe >&2
start_stack

say "starting $NODES nodes for $MINUTES minutes"
$B/firewatch-fleet -b "$URL" -n "$NODES" --prefix n -i "$INTERVAL" --connect-rate 1000 -q \
    --stats "$RUN/fleet.json" 2>"$RUN/fleet.log" &
pids+=($!)
SECS=$((MINUTES * 60))
$B/bench-probe -b "$URL" -f "$RUN/probes-fixed.txt" -r "$EVENT_RATE" -d "$SECS" -o "$RUN/pump.json" \
    2>"$RUN/pump.log" &
PUMP=$!
pids+=($PUMP)

echo "t_s,rss_kb,db_kb,readings,events" >"$RUN/samples.csv"
t0=$SECONDS
while kill -0 "$PUMP" 2>/dev/null; do
    sleep 30
    kill -0 "$HUB" 2>/dev/null || die "the hub died; see $RUN/hub.log"
    db_kb=$(du -k "$RUN/hub.db" | cut -f1)
    counts=$(sqlite3 "$RUN/hub.db" "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM events)" | tr '|' ',')
    echo "$((SECONDS - t0)),$(rss_kb "$HUB"),$db_kb,$counts" >>"$RUN/samples.csv"
    printf '\rsoak: %4ds of %ds, hub %d MB, %s readings/events ' "$((SECONDS - t0))" "$SECS" \
        "$(($(rss_kb "$HUB") / 1024))" "$counts" >&2
done
echo >&2
sleep 3 # last commits

$PY - "$RUN" "$GROWTH" <<'PYEOF'
import csv, json, sys, os
run, growth = sys.argv[1], float(sys.argv[2])
pump = json.load(open(os.path.join(run, "pump.json")))
import sqlite3
db = sqlite3.connect(os.path.join(run, "hub.db"))
stored = db.execute("SELECT count(*) FROM events WHERE node_id LIKE 'probe-%' AND boot = ? AND type = 'test'",
                    (pump["boot"],)).fetchone()[0]
rows = list(csv.DictReader(open(os.path.join(run, "samples.csv"))))
rss = [int(r["rss_kb"]) for r in rows]
third = max(1, len(rss) // 3)
middle = sum(rss[third:2 * third]) / max(1, len(rss[third:2 * third]))
last = sum(rss[2 * third:]) / max(1, len(rss[2 * third:]))
grew = (last - middle) / middle * 100 if middle else 0
lost = pump["acked"] - stored
print("soak: %d events acknowledged by the broker, %d stored, %d lost" % (pump["acked"], stored, lost))
print("soak: hub memory middle third %.1f MB, last third %.1f MB (%+.1f%%), peak %.1f MB"
      % (middle / 1024, last / 1024, grew, max(rss) / 1024))
ok = lost == 0 and grew <= growth
json.dump({"acked": pump["acked"], "stored": stored, "lost": lost, "rss_middle_mb": middle / 1024,
           "rss_last_mb": last / 1024, "growth_pct": grew, "samples": len(rss), "pass": ok},
          open(os.path.join(run, "soak.json"), "w"), indent=2)
print("soak: %s" % ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PYEOF
