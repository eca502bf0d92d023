# scripts/lib/stack.sh - start a measured Firewatch stack on loopback, for
# make bench and make soak: an anonymous private broker, a hub with a bulk
# topology, helpers to wait and to read a process's memory. Sourced, not run.
# Expects: RUN (scratch dir), B (bin dir), PY, NODES, INTERVAL, PROBES,
# LOADERS, optionally HISTORY_DAYS and HISTORY_SAMPLE; sets MQTT_PORT,
# HTTP_PORT, URL, HUB, and appends to pids.

say() { printf '%s: %s\n' "${SAY:-bench}" "$*" >&2; }
die() { say "$*"; exit 1; }

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2 t0=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - t0 < limit)) || die "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

# Starts the broker and the hub with NODES fleet nodes (n-NNNN, 20 per
# zone), LOADERS load nodes (ld-NNNN) and 2 x PROBES probe nodes alone in
# their zones; with HISTORY_DAYS > 0 also their reading history
# (make_history); measures the idle hub's memory into RSS_IDLE.
start_stack() {
rm -rf "$RUN"
mkdir -p "$RUN"
MQTT_PORT=$(free_port)
HTTP_PORT=$(free_port)
URL=tcp://127.0.0.1:$MQTT_PORT

# --- broker: loopback, anonymous (the bench measures the hub, not auth) ---
cat >"$RUN/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
max_connections -1
max_queued_messages 0
persistence false
log_dest file $RUN/mosquitto.log
EOF
[ "$(id -u)" -eq 0 ] && echo "user root" >>"$RUN/mosquitto.conf"
mosquitto -c "$RUN/mosquitto.conf" &
pids+=($!)
wait_for 10 "the broker" mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t x -W 1 -C 1 -E

# --- hub and topology ---------------------------------------------------
cat >"$RUN/hub.conf" <<EOF
broker $URL
database $RUN/hub.db
http_listen 127.0.0.1:$HTTP_PORT
verify_s 2
log_level warn
EOF
$B/firewatchctl -c "$RUN/hub.conf" site add bench --name "Bench site" >/dev/null
say "creating $NODES nodes, $PROBES probe zones and $LOADERS load nodes"
# Bulk topology straight into the schema firewatchctl just created: one
# transaction instead of tens of thousands of firewatchctl runs.
now_ms=$(($(date +%s) * 1000))
sqlite3 "$RUN/hub.db" <<EOF
PRAGMA foreign_keys = ON;
BEGIN;
WITH RECURSIVE z(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM z WHERE i < ($NODES + 19) / 20)
  INSERT INTO zones(id, site_id, name) SELECT printf('bz-%04d', i), 'bench', printf('Zone %d', i) FROM z;
WITH RECURSIVE h(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM h WHERE i < ($NODES + 1) / 2)
  INSERT INTO households(id, zone_id, address) SELECT printf('bh-%05d', i), printf('bz-%04d', (i - 1) / 10 + 1),
    printf('%d Bench Street', i) FROM h;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $NODES)
  INSERT INTO nodes(id, household_id, kind, interval_s, created_ms, commissioned_ms, last_test_ms)
    SELECT printf('n-%04d', i), printf('bh-%05d', (i - 1) / 2 + 1), 'combo', $INTERVAL, $now_ms, $now_ms, $now_ms FROM n;
INSERT INTO zones(id, site_id, name) VALUES ('lz', 'bench', 'Load zone');
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $LOADERS)
  INSERT INTO households(id, zone_id) SELECT printf('lh-%04d', i), 'lz' FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $LOADERS)
  INSERT INTO nodes(id, household_id, kind, interval_s, created_ms) SELECT printf('ld-%04d', i),
    printf('lh-%04d', i), 'combo', 1, $now_ms FROM n;
WITH RECURSIVE p(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM p WHERE i < 2 * $PROBES)
  INSERT INTO zones(id, site_id) SELECT printf('pz-%04d', i), 'bench' FROM p;
WITH RECURSIVE p(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM p WHERE i < 2 * $PROBES)
  INSERT INTO households(id, zone_id) SELECT printf('ph-%04d', i), printf('pz-%04d', i) FROM p;
WITH RECURSIVE p(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM p WHERE i < 2 * $PROBES)
  INSERT INTO nodes(id, household_id, kind, created_ms) SELECT printf('probe-%04d', i), printf('ph-%04d', i),
    'heat', $now_ms FROM p;
COMMIT;
EOF
for i in $(seq 1 "$PROBES"); do printf 'probe-%04d pz-%04d\n' "$i" "$i"; done >"$RUN/probes-fixed.txt"
for i in $(seq $((PROBES + 1)) $((2 * PROBES))); do printf 'probe-%04d pz-%04d\n' "$i" "$i"; done >"$RUN/probes-window.txt"

[ "${HISTORY_DAYS:-0}" -gt 0 ] && make_history

hub_online() { mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -t firewatch/v1/hub/status -C 1 -W 1 | grep -q '"online":true'; }
$B/firewatch-hub -c "$RUN/hub.conf" 2>"$RUN/hub.log" &
HUB=$!
pids+=($HUB)
wait_for 30 "the hub" hub_online
sleep 1
RSS_IDLE=$(rss_kb $HUB)
say "hub idle: $((RSS_IDLE / 1024)) MB resident"
}

# Reading history for the dashboard queries, written before the hub starts
# (one transaction, like the topology): hourly rollups over HISTORY_DAYS for
# every fleet node, and for HISTORY_SAMPLE of them (spread evenly, listed in
# $RUN/history-nodes.txt) the last day as raw readings every INTERVAL s
# plus its 5-minute rollups.
make_history() {
local days=$HISTORY_DAYS sample=${HISTORY_SAMPLE:-200} t0=$SECONDS now_ms
((sample > NODES)) && sample=$NODES
local stride=$((NODES / sample))
now_ms=$(($(date +%s) * 1000))
local hour0=$(((now_ms / 3600000 - 24 * days) * 3600000)) day0=$((now_ms - 86400000))
say "history: $days days of hourly rollups for $NODES nodes, the last day raw for $sample of them"
sqlite3 "$RUN/hub.db" <<EOF
PRAGMA synchronous = OFF;
PRAGMA cache_size = -200000;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $NODES),
  h(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM h WHERE k < 24 * $days - 1)
  INSERT INTO rollups(node_id, period_s, start_ms, n, temp_min, temp_max, temp_mean, batt_min)
    SELECT printf('n-%04d', i), 3600, $hour0 + k * 3600000, 3600 / $INTERVAL, 22.0 + (i + k) % 7 * 0.5,
      24.0 + (i + k) % 7 * 0.5, 23.0 + (i + k) % 7 * 0.5, 90 FROM n, h;
WITH RECURSIVE s(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM s WHERE j < $sample),
  b(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM b WHERE k < 287)
  INSERT INTO rollups(node_id, period_s, start_ms, n, temp_min, temp_max, temp_mean, batt_min)
    SELECT printf('n-%04d', j * $stride), 300, ($day0 / 300000 + k) * 300000, 300 / $INTERVAL, 22.5, 23.5,
      23.0, 90 FROM s, b;
WITH RECURSIVE s(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM s WHERE j < $sample),
  r(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM r WHERE k < 86400 / $INTERVAL - 1)
  INSERT INTO readings(node_id, rx_ms, node_ts, seq, temp_c, smoke, batt_pct)
    SELECT printf('n-%04d', j * $stride), $day0 + k * $INTERVAL * 1000, $day0 + k * $INTERVAL * 1000, k + 1,
      22.0 + (j + k / 30) % 5 * 0.5, 0, 90 FROM s, r;
COMMIT;
EOF
for j in $(seq 1 "$sample"); do printf 'n-%04d\n' $((j * stride)); done >"$RUN/history-nodes.txt"
say "history: written in $((SECONDS - t0)) s ($(($(stat -c %s "$RUN/hub.db") / 1048576)) MB database)"
}
