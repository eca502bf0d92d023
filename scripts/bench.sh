#!/bin/bash
# make bench: Firewatch's numbers, each beside a baseline measured in the
# same run on the same machine (docs/benchmarks.md explains the method).
#
#   ingest    readings/s the hub commits to SQLite  vs  readings/s a bare
#             subscriber receives from the same broker under the same load
#   latency   node alarm event -> zone alarm at a subscriber (p50/p99/max),
#             with 10,000 nodes reporting, vs the broker's own QoS 1 echo
#   memory    hub resident set with 10,000 nodes  vs  the idle hub
#   api       dashboard queries p50/p99/max with 10,000 nodes and 30 days of
#             history, vs GET /api/v1/health on the same connection
#   stream    an escalation reaching 200 live stream (SSE) clients, vs the
#             same publish reaching an MQTT subscriber as the zone alarm
#
# Results: a table on stdout and build/bench/results.json.
# Knobs (environment): BENCH_NODES (10000), BENCH_INTERVAL_S (10),
# BENCH_INGEST_RATE (20000), BENCH_INGEST_S (20), BENCH_PROBES (200),
# BENCH_HISTORY_DAYS (30), BENCH_API_REQUESTS (800), BENCH_STREAM_CLIENTS
# (200), BENCH_STREAM_TRIALS (5), BENCH_FED_AREAS (1000), BENCH_FED_ZONES (20).
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${BENCH_NODES:-10000}
INTERVAL=${BENCH_INTERVAL_S:-10}
INGEST_RATE=${BENCH_INGEST_RATE:-20000}
INGEST_S=${BENCH_INGEST_S:-20}
PROBES=${BENCH_PROBES:-200}
LOADERS=1000 # extra nodes that carry the ingest load
HISTORY_DAYS=${BENCH_HISTORY_DAYS:-30}
HISTORY_SAMPLE=200 # nodes with raw readings and 5-minute rollups for the last day
API_REQUESTS=${BENCH_API_REQUESTS:-800}
STREAM_CLIENTS=${BENCH_STREAM_CLIENTS:-200}
STREAM_TRIALS=${BENCH_STREAM_TRIALS:-5}
FED_AREAS=${BENCH_FED_AREAS:-1000}
FED_ZONES=${BENCH_FED_ZONES:-20}
API_USER=bench
API_PASSWORD=bench-password-$$

OUT=build/rel
B=$PWD/$OUT/bin
RUN=$PWD/build/bench
PY=/usr/bin/python3

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
# shellcheck source=scripts/lib/stack.sh
. scripts/lib/stack.sh

make --no-print-directory -s OUT=$OUT all $OUT/bin/bench-sub $OUT/bin/bench-probe $OUT/bin/bench-http \
    $OUT/bin/bench-fed >&2
start_stack

# --- 10,000 nodes reporting ----------------------------------------------
say "starting $NODES simulated nodes (interval ${INTERVAL}s)"
$B/firewatch-fleet -b "$URL" -n "$NODES" --prefix n -i "$INTERVAL" --connect-rate 1000 -q \
    --stats "$RUN/fleet.json" 2>"$RUN/fleet.log" &
FLEET=$!
pids+=($FLEET)
online() { [ "$(sqlite3 "$RUN/hub.db" "SELECT count(*) FROM nodes WHERE online = 1 AND id LIKE 'n-%'")" -ge $((NODES * 99 / 100)) ]; }
wait_for 600 "$NODES nodes online at the hub" online
RSS_HWM_CONNECT=$(hwm_kb $HUB) # the highest so far: start-up (Argon2id, docs/benchmarks.md) and the connections
sleep $((2 * INTERVAL))
RSS_FLEET=$(rss_kb $HUB)
say "hub with $NODES nodes: $((RSS_FLEET / 1024)) MB resident"

# --- alarm latency under that load --------------------------------------
say "alarm latency: $PROBES immediate escalations (heat_fixed)"
$B/bench-probe -b "$URL" -f "$RUN/probes-fixed.txt" -c heat_fixed -g 50 -o "$RUN/latency-fixed.json" || true
# Each windowed sample waits out the 2 s window, so fewer of them.
WINDOWED=$((PROBES < 50 ? PROBES : 50))
head -n "$WINDOWED" "$RUN/probes-window.txt" >"$RUN/probes-window-used.txt"
say "alarm latency: $WINDOWED windowed escalations (heat_ror, 2 s window)"
$B/bench-probe -b "$URL" -f "$RUN/probes-window-used.txt" -c heat_ror -w 2000 -g 20 -o "$RUN/latency-window.json" ||
    true
RSS_PEAK=$(hwm_kb $HUB)

# --- dashboard API with that history ------------------------------------
printf '%s\n' "$API_PASSWORD" | $B/firewatchctl -c "$RUN/hub.conf" user add "$API_USER" --role admin >/dev/null
say "api: $API_REQUESTS dashboard queries, each followed by GET /api/v1/health (baseline)"
$B/bench-http -p "$HTTP_PORT" -u "$API_USER" -P "$API_PASSWORD" -m api -n "$API_REQUESTS" -s bench -N "$NODES" \
    -f "$RUN/history-nodes.txt" -o "$RUN/api.json" || true

# --- live stream fan-out ------------------------------------------------
# Probe nodes the windowed phase left unused, one per trial (fresh zones).
unused=$((PROBES - WINDOWED))
tail -n "$((unused < STREAM_TRIALS ? unused : STREAM_TRIALS))" "$RUN/probes-window.txt" >"$RUN/probes-stream.txt"
if [ "$unused" -gt 0 ]; then
    say "stream: $STREAM_CLIENTS SSE clients, $(wc -l <"$RUN/probes-stream.txt") escalations"
    $B/bench-http -p "$HTTP_PORT" -u "$API_USER" -P "$API_PASSWORD" -m stream -b "$URL" -c "$STREAM_CLIENTS" \
        -f "$RUN/probes-stream.txt" -o "$RUN/stream.json" || true
else
    say "stream: skipped, no unused probe node (BENCH_PROBES > 50 needed)"
fi

# --- ingest: the hub against a bare subscriber, same load, same time ------
say "ingest: $LOADERS nodes offering ${INGEST_RATE} readings/s for ${INGEST_S}s"
before=$(sqlite3 "$RUN/hub.db" "SELECT count(*) FROM readings WHERE node_id LIKE 'ld-%'")
# The subscriber counts the load nodes' readings only, as the hub count does.
$B/bench-sub -b "$URL" -t 'firewatch/v1/node/+/reading' -m /ld- -d $((INGEST_S + 15)) -o "$RUN/sub.json" \
    2>/dev/null &
SUB=$!
pids+=($SUB)
sleep 2
$B/firewatch-fleet -b "$URL" -n "$LOADERS" --prefix ld --rate "$INGEST_RATE" -d "$INGEST_S" -q \
    --stats "$RUN/load.json" 2>"$RUN/load.log"
# Let the hub drain its batches, then count what it committed.
prev=-1
for _ in $(seq 1 30); do
    cur=$(sqlite3 "$RUN/hub.db" "SELECT count(*) FROM readings WHERE node_id LIKE 'ld-%'")
    [ "$cur" = "$prev" ] && break
    prev=$cur
    sleep 1
done
committed=$((cur - before))
wait $SUB || true
printf '{"committed":%d}\n' "$committed" >"$RUN/hub-ingest.json"

RSS_HWM_END=$(hwm_kb $HUB) # after the API, stream and ingest phases too
RSS_END=$(rss_kb $HUB)

# --- federation: a regional hub with a city's areas ----------------------
# The receiver fed what every area publishes when the regional hub
# subscribes, beside plain inserts of the same bytes; then a regional hub
# serves that database (its broker need not be there: no area publishes
# during the timing) and its view is timed beside /api/v1/health.
say "federation: $FED_AREAS areas x $FED_ZONES zones through the regional receiver (baseline: plain inserts)"
$B/bench-fed -d "$RUN/region.db" -a "$FED_AREAS" -z "$FED_ZONES" -o "$RUN/fed.json" 2>"$RUN/bench-fed.log" || true
cat >"$RUN/region.conf" <<CONF
mode regional
hub_id region
client_id bench-region
broker tcp://127.0.0.1:1
database $RUN/region.db
db_sync_full false
http_listen 127.0.0.1:0
http_web_root $PWD/hub/web
CONF
printf '%s\n' "$API_PASSWORD" | $B/firewatchctl -c "$RUN/region.conf" user add "$API_USER" --role watch >/dev/null
$B/firewatch-hub -c "$RUN/region.conf" >"$RUN/region.log" 2>&1 &
REGION=$!
pids+=("$REGION")
region_port() { sed -n 's/.*http: serving on .*(port \([0-9]*\)).*/\1/p' "$RUN/region.log" | tail -1; }
region_serving() { [ -n "$(region_port)" ]; }
wait_for 20 "the regional hub's HTTP" region_serving
say "federation: $API_REQUESTS regional view queries, each followed by GET /api/v1/health (baseline)"
$B/bench-http -p "$(region_port)" -u "$API_USER" -P "$API_PASSWORD" -m region -n "$API_REQUESTS" -N "$FED_AREAS" \
    -o "$RUN/region-api.json" || true
kill "$REGION" 2>/dev/null || true

# --- results --------------------------------------------------------------
$PY - "$RUN" "$RSS_IDLE" "$RSS_FLEET" "$RSS_PEAK" "$NODES" "$INGEST_S" "$RSS_HWM_CONNECT" "$RSS_HWM_END" "$RSS_END" <<'EOF'
import json, sys, os, platform
run, rss_idle, rss_fleet, rss_peak, nodes, ingest_s, hwm_connect, hwm_end, rss_end = sys.argv[1], *map(int, sys.argv[2:])
def load(name):
    try:
        return json.load(open(os.path.join(run, name)))
    except Exception:
        return {}
sub, hub, load_ = load("sub.json"), load("hub-ingest.json"), load("load.json")
fixed, window = load("latency-fixed.json"), load("latency-window.json")
api, stream = load("api.json"), load("stream.json")
fed, region_api = load("fed.json"), load("region-api.json")
received = sub.get("received", 0)
committed = hub.get("committed", 0)
sub_rate = sub.get("per_second", 0.0)
secs = sub.get("seconds", 0) or 1
hub_rate = committed / secs if secs else 0
ratio = committed / received if received else 0
res = {
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
    "ingest": {"offered": load_.get("readings"), "subscriber_received": received,
               "hub_committed": committed, "subscriber_per_s": sub_rate, "hub_per_s": round(hub_rate, 1),
               "ratio": round(ratio, 3), "target_ratio": 0.8},
    "latency_immediate": fixed, "latency_windowed": window,
    "api": dict(api, target_p99_ms=50), "stream": dict(stream, target_ms=100),
    "federation": {"receiver": fed, "regional_api": region_api},
    "memory": {"nodes": nodes, "hub_idle_mb": round(rss_idle / 1024, 1),
               "hub_with_nodes_mb": round(rss_fleet / 1024, 1), "hub_peak_mb": round(rss_peak / 1024, 1),
               "hub_peak_after_connect_mb": round(hwm_connect / 1024, 1), "hub_peak_end_mb": round(hwm_end / 1024, 1),
               "hub_end_mb": round(rss_end / 1024, 1),
               "ratio_to_idle": round(rss_fleet / rss_idle, 2) if rss_idle else None, "target_mb": 64},
}
json.dump(res, open(os.path.join(run, "results.json"), "w"), indent=2)
def lat(d, key):
    v = d.get(key, {})
    return "%7.2f %7.2f %7.2f" % (v.get("p50_ms", -1), v.get("p99_ms", -1), v.get("max_ms", -1)) if v else "   (no data)"
print()
print("%-34s %14s %14s %8s  %s" % ("figure", "firewatch", "baseline", "ratio", "target"))
print("%-34s %14.0f %14.0f %8.3f  %s" % ("ingest readings/s (hub vs sub)", hub_rate, sub_rate, ratio, ">= 0.8"))
print("%-34s %14d %14d" % ("  readings committed / received", committed, received))
print("%-34s %s" % ("alarm latency ms p50/p99/max", ""))
print("%-34s %s   baseline %s   (target p99 < 25)" % ("  immediate (heat_fixed)", lat(fixed, "alarm"), lat(fixed, "baseline")))
print("%-34s %s   baseline %s   (beyond the window)" % ("  windowed (heat_ror)", lat(window, "alarm"), lat(window, "baseline")))
print("%-34s %14.1f %14.1f %8.2f  %s" % ("hub resident MB (%d nodes vs idle)" % nodes, rss_fleet / 1024, rss_idle / 1024,
      rss_fleet / rss_idle if rss_idle else 0, "< 64 MB"))
print("%-34s %14.1f" % ("  hub peak resident MB, start + connect", hwm_connect / 1024))
print("%-34s %14.1f" % ("  ... after the latency phases", rss_peak / 1024))
print("%-34s %14.1f" % ("  ... at the end (API, stream, ingest)", hwm_end / 1024))
print("%-34s %14.1f" % ("  hub resident MB at the end", rss_end / 1024))
print("%-34s %s   baseline %s   (target p99 < 50)" % ("api ms p50/p99/max, all queries", lat(api, "overall"),
      lat(api, "baseline")))
for name, v in api.get("routes", {}).items():
    print("%-34s %s" % ("  " + name, lat(api.get("routes"), name)))
if stream:
    print("%-34s %7.2f %7.2f %7s   baseline %7.2f   (target < 100; %d/%d clients, %d trials, %d missing)" % (
          "stream ms p50/last client (worst)", stream.get("stream_p50_ms", -1), stream.get("stream_last_ms", -1), "",
          stream.get("baseline_mqtt_ms", -1), stream.get("connected", 0), stream.get("clients", 0),
          stream.get("trials_n", 0), stream.get("missing", 0)))
else:
    print("%-34s %s" % ("stream ms", "   (no data)"))
if fed:
    print("%-34s %14.0f %14.0f %8.3f  %s" % ("regional receiver docs/s (vs inserts)", fed.get("receiver_per_s", 0),
          fed.get("baseline_per_s", 0), fed.get("ratio", 0), "%d areas x %d zones, %d docs, %d applied, %.0f KB/area" % (
          fed.get("areas", 0), fed.get("zones_per_area", 0), fed.get("messages", 0), fed.get("applied", 0),
          fed.get("db_kb_per_area", 0))))
if region_api:
    print("%-34s %s   baseline %s" % ("regional api ms p50/p99/max", lat(region_api, "overall"),
          lat(region_api, "baseline")))
    for name, v in region_api.get("routes", {}).items():
        print("%-34s %s" % ("  " + name, lat(region_api.get("routes"), name)))
print()
print("results: %s/results.json" % run)
EOF
