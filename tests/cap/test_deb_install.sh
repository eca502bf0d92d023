#!/bin/bash
# tests/cap/test_deb_install.sh - the two Debian packages installed on a
# fresh Debian 12 and their services started (docs/packaging.md, "Tests").
#
# Prints "ok - name" / "not ok - name" per check, as scripts/run-tests.sh
# counts them. Run from the repository root (FW_ROOT), as root: it builds
# release packages into build/rel-deb/ (not the sanitized build, whose
# programs need libasan), makes a minimal bookworm root with debootstrap in
# build/deb-install/ (from the host's Debian mirror; the bootstrapped base is
# kept as a tarball there, a week at most, and the downloaded packages in
# apt-archives/, so a rerun is fast), and then in that root:
#   1. `apt-get install ./firewatch-hub_*.deb ./firewatch-node_*.deb`: apt
#      resolves Depends (and Recommends) from the mirror; postinst makes the
#      user, groups, state directories and configs, and enables both units;
#   2. the hub is set up as docs/technician-guide.md says (username and
#      password in hub.conf, `firewatchctl broker config`, the mosquitto
#      drop-in), then Mosquitto, firewatch-hub and firewatch-node are started
#      the way systemd would: each unit's ExecStartPre= and ExecStart= lines,
#      drop-ins applied, read from the installed unit files and run as the
#      unit's User=/Group=/SupplementaryGroups= (chroot --userspec), with a
#      clean environment, Nice=, and for Type=notify a NOTIFY_SOCKET this
#      script listens on. Every wait polls a condition against a deadline;
#   3. the hub says READY=1 and answers /api/v1/health and the dashboard; a
#      node provisioned with `firewatchctl node add` passes its unit's
#      --check-config, connects, and the hub lists it online;
#   4. SIGTERM (the units' KillSignal) stops each cleanly, and
#      `dpkg --purge` removes both packages, keeping the hub's database.
# The services run in their own network namespace (ip netns), so the units'
# default ports (1883, 1884, 8080) are used without meeting anything on the
# host; apt runs in the host's network.
#
# What it does not prove: systemd itself. There is no systemd as PID 1 here
# (the runner's PID 1 is a sandbox agent, cgroup v1 without a systemd
# hierarchy), and `systemd-nspawn --boot` of this root was tried: systemd
# printed nothing and the container hung until killed. So the units' sandboxing
# (ProtectSystem=, PrivateTmp=, DeviceAllow=, MemoryMax=), WatchdogSec= and
# Restart= are not exercised; tests/cap/test_package.sh checks their syntax
# with systemd-analyze verify. GPIO neither: the node runs `backend sim`.
#
# Not root, or no debootstrap or ip: every check is skipped, with why.
# Functions run through traps and wait_for look unreachable to shellcheck.
# shellcheck disable=SC2317
set -u
cd "${FW_ROOT:-.}" || exit 1
build=${FW_BUILD:-$PWD/build/san}
top=${build%/*}
top=${top#"$PWD"/}
rel=$top/rel-deb
work=$top/deb-install
root=$PWD/$work/root
base=$work/bookworm-minbase.tar
ns=fw-deb-$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fw-debinst-XXXXXX")
fails=0
pids=()
declare -A upid # unit -> pid of its ExecStart
names=(
    "release build: make deb into $rel"
    "debootstrap --variant=minbase bookworm (or its cached tarball)"
    "apt-get install ./firewatch-hub_*.deb ./firewatch-node_*.deb in the fresh root"
    "the installed programs run (every library resolved)"
    "postinst: user firewatch, group gpio, state dirs, configs 0640 root:firewatch, units enabled, nothing started"
    "as installed: mosquitto and firewatch-hub start (READY=1), the hub answers /api/v1/health and serves the dashboard"
    "firewatchctl broker config with the hub's account in hub.conf"
    "mosquitto.service restarted with the drop-in docs/hub.md gives: READY=1"
    "firewatch-hub.service restarted: READY=1, health ok, logged in to the broker's hub listener"
    "firewatchctl provisions a node (site, zone, household, node add), the hub loads it"
    "firewatch-node.service: ExecStartPre --check-config accepts the provisioned node.conf"
    "firewatch-node.service starts as firewatch (+gpio): the hub lists the node online"
    "SIGTERM stops the node and the hub with status 0"
    "dpkg --purge firewatch-node firewatch-hub: gone, configs removed, database kept"
)

ok() { echo "ok - $1"; }
notok() {
    echo "not ok - $1"
    fails=$((fails + 1))
}
skip_rest() { # skip_rest FROM REASON: skips checks FROM.. of names
    local i
    for ((i = $1; i < ${#names[@]}; i++)); do ok "${names[$i]} # SKIP $2"; done
}
indent() { sed 's/^/#   /' | tail -"${1:-20}"; }

why=""
[ "$(id -u)" -eq 0 ] || why="needs root (debootstrap, chroot, mount, ip netns)"
[ -n "$why" ] || command -v debootstrap >/dev/null 2>&1 || why="no debootstrap (scripts/deps.sh test)"
[ -n "$why" ] || command -v ip >/dev/null 2>&1 || why="no ip (Debian package iproute2)"
if [ -n "$why" ]; then
    skip_rest 0 "$why"
    rm -rf "$tmp"
    exit 0
fi

# ---- cleanup: every process started here, the mounts, the namespace --------------
cleanup() {
    local p i
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < 50; i++)); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    mountpoint -q "$root/proc" && umount "$root/proc"
    ip netns del "$ns" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP
# One run at a time per build directory: the root and the caches are shared.
mkdir -p "$work"
exec 9>"$work/.lock"
if ! flock -w 900 9; then
    notok "${names[0]}: $work/.lock held by another run for 15 minutes"
    exit 1
fi

# wait_for SECONDS COMMAND...: polls the command every 0.2 s until it succeeds.
wait_for() {
    local end=$(($(date +%s%N) + $1 * 1000000000))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# host_mirror [SUITE]: the URI the host's apt sources use for Debian SUITE
# (default bookworm), from sources.list or deb822 .sources files.
host_mirror() {
    local suite=${1:-bookworm} f uri
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk -v s="$suite" '$1 == "deb" { for (i = 2; i < NF; i++)
            if ($i ~ /^[a-z]+:\/\// && $(i + 1) == s) { print $i; exit } }' "$f")
        [ -n "$uri" ] && echo "$uri" && return
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v s="$suite" 'BEGIN { RS = "" } {
            n = split($0, l, "\n"); u = ""; ok = 0; deb = 0
            for (i = 1; i <= n; i++) {
                if (l[i] ~ /^URIs:/) { u = l[i]; sub(/^URIs: */, "", u); sub(/ .*/, "", u) }
                if (l[i] ~ /^Types:/ && l[i] ~ /[: ]deb( |$)/) deb = 1
                if (l[i] ~ /^Suites:/ && (" " substr(l[i], 8) " ") ~ (" " s " ")) ok = 1
            }
            if (ok && deb && u != "") { print u; exit } }' "$f")
        [ -n "$uri" ] && echo "$uri" && return
    done
    [ "$suite" = bookworm ] && echo http://deb.debian.org/debian
}

in_root() { # in_root COMMAND...: as root in the root, clean environment, host network
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root \
        chroot "$root" "$@"
}
in_ns() { # in_ns COMMAND...: as root in the root, in the services' network namespace
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root ip netns exec "$ns" chroot "$root" "$@"
}
id_in() { awk -F: -v n="$2" '$1 == n { print $3 }' "$root/etc/$1"; } # id_in passwd|group NAME

# unit_get UNIT KEY: the values of KEY= in UNIT's [Service] section, from the
# unit file the root's systemd would load, then its drop-ins in name order;
# an empty value resets the list (as for ExecStart=).
unit_get() {
    local unit=$1 key=$2 d f files=()
    for d in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
        [ -f "$root$d/$unit" ] && files=("$root$d/$unit") && break
    done
    [ ${#files[@]} -gt 0 ] || return 1
    while read -r f; do files+=("$f"); done < <(
        for d in /usr/lib/systemd/system /lib/systemd/system /etc/systemd/system; do
            for f in "$root$d/$unit.d"/*.conf; do [ -f "$f" ] && printf '%s\t%s\n' "${f##*/}" "$f"; done
        done | sort -s -k1,1 | cut -f2)
    awk -v key="$key" '
        /^\[/ { sec = $0; next }
        sec == "[Service]" && index($0, key "=") == 1 {
            v = substr($0, length(key) + 2)
            if (v == "") n = 0; else vals[n++] = v
        }
        END { for (i = 0; i < n; i++) print vals[i] }' "${files[@]}"
}

# start_unit UNIT: starts UNIT as systemd would, in the root and the
# namespace: each ExecStartPre= in turn, then ExecStart= in the background
# (its pid appended to pids, its output in $tmp/UNIT.log). For Type=notify,
# waits until READY=1 arrives on NOTIFY_SOCKET (at most 30 s). Fails on a
# command line this does not model (quotes, specifiers, variables).
start_unit() {
    local unit=$1 user group type nice g gid uid groups line prefix
    local -a as=() envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
    user=$(unit_get "$unit" User | tail -1)
    group=$(unit_get "$unit" Group | tail -1)
    type=$(unit_get "$unit" Type | tail -1)
    nice=$(unit_get "$unit" Nice | tail -1)
    if [ -n "$user" ]; then
        uid=$(id_in passwd "$user")
        gid=$(id_in group "${group:-$user}")
        if [ -z "$uid" ] || [ -z "$gid" ]; then
            echo "$unit: no user $user or group ${group:-$user} in the root"
            return 1
        fi
        # The user's groups (initgroups), then SupplementaryGroups=.
        groups=$gid
        for g in $(awk -F: -v u="$user" '("," $4 ",") ~ ("," u ",") { print $1 }' "$root/etc/group") \
            $(unit_get "$unit" SupplementaryGroups); do
            groups="$groups,$(id_in group "$g")"
        done
        as=(--userspec="$uid:$gid" --groups="$groups")
        envs+=(USER="$user" LOGNAME="$user" HOME="$(awk -F: -v n="$user" '$1 == n { print $6 }' "$root/etc/passwd")")
    else
        envs+=(USER=root LOGNAME=root HOME=/root)
    fi
    while read -r line; do [ -n "$line" ] && envs+=("$line"); done < <(unit_get "$unit" Environment | tr ' ' '\n')
    # StateDirectory= and friends: created, and given to User= recursively
    # when their owner differs (systemd.exec(5)); ConfigurationDirectory= is
    # only created.
    local key dir
    for key in StateDirectory:/var/lib CacheDirectory:/var/cache LogsDirectory:/var/log RuntimeDirectory:/run \
        ConfigurationDirectory:/etc; do
        for dir in $(unit_get "$unit" "${key%%:*}"); do
            mkdir -p "$root${key#*:}/$dir"
            if [ -n "$user" ] && [ "${key%%:*}" != ConfigurationDirectory ] &&
                [ "$(stat -c %u:%g "$root${key#*:}/$dir")" != "$uid:$gid" ]; then
                chown -R "$uid:$gid" "$root${key#*:}/$dir"
            fi
        done
    done
    if [ "$type" = notify ]; then
        envs+=(NOTIFY_SOCKET="@$ns-$unit")
        ip netns exec "$ns" python3 "$tmp/notify.py" "$ns-$unit" 30 </dev/null >"$tmp/$unit.notify" 2>&1 &
        pids+=("$!")
        wait_for 10 grep -q '^listening' "$tmp/$unit.notify" || { echo "$unit: notify listener did not start"; return 1; }
    fi
    while read -r line; do
        prefix=${line%%/*}
        line=${line#"$prefix"}
        case $line in *[\"\'%\$\\]*) echo "$unit: cannot model ExecStartPre=$line"; return 1 ;; esac
        local -a who=("${as[@]}")
        case $prefix in *[+!]*) who=() ;; esac
        # shellcheck disable=SC2086
        if ! env -i "${envs[@]}" ip netns exec "$ns" chroot "${who[@]}" "$root" $line </dev/null >>"$tmp/$unit.log" 2>&1 &&
            [[ $prefix != *-* ]]; then
            echo "$unit: ExecStartPre=$line failed"
            return 1
        fi
    done < <(unit_get "$unit" ExecStartPre)
    line=$(unit_get "$unit" ExecStart | tail -1)
    line=${line#"${line%%/*}"}
    case $line in *[\"\'%\$\\]* | "") echo "$unit: cannot model ExecStart=$line"; return 1 ;; esac
    echo "$unit: ExecStart=$line as ${user:-root} (groups ${groups:-root})${nice:+ nice $nice}"
    # Every command below execs the next, so $! is the service's own pid.
    # shellcheck disable=SC2086
    env -i "${envs[@]}" ip netns exec "$ns" ${nice:+nice -n "$nice"} chroot "${as[@]}" "$root" $line \
        </dev/null >>"$tmp/$unit.log" 2>&1 &
    pids+=("$!")
    upid[$unit]=$!
    if [ "$type" = notify ]; then
        wait_for 30 grep -q 'READY=1' "$tmp/$unit.notify" || { echo "$unit: no READY=1"; return 1; }
    fi
    kill -0 "$!" 2>/dev/null || { echo "$unit: exited at once"; return 1; }
}

# stop_unit UNIT: as systemctl stop: KillSignal= (SIGTERM here), then waits
# TimeoutStopSec= (default 90 s) for the exit; succeeds on exit status 0.
stop_unit() {
    local p=${upid[$1]:-} t
    [ -n "$p" ] || return 1
    unset "upid[$1]"
    t=$(unit_get "$1" TimeoutStopSec | tail -1)
    [ "$(unit_get "$1" KillSignal | tail -1)" = "" ] || [ "$(unit_get "$1" KillSignal | tail -1)" = SIGTERM ] ||
        { echo "$1: KillSignal not modelled"; return 1; }
    kill -TERM "$p" 2>/dev/null || return 1
    wait_for "${t:-90}" bash -c "! kill -0 $p" || { echo "$1: still running after ${t:-90} s"; return 1; }
    wait "$p"
}

cat >"$tmp/notify.py" <<'EOF'
# Listens on an abstract AF_UNIX datagram socket as systemd's NOTIFY_SOCKET
# and prints each message; exits 0 at READY=1, 1 when the time is up.
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1])
print("listening", flush=True)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        msg = s.recv(4096).decode(errors="replace")
    except socket.timeout:
        break
    print(msg.replace("\n", " "), flush=True)
    if "READY=1" in msg.split("\n"):
        sys.exit(0)
sys.exit(1)
EOF
cat >"$tmp/get.py" <<'EOF'
# get.py URL: prints the HTTP status and the body.
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=2)
    print(r.status); print(r.read().decode(errors="replace"))
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode(errors="replace"))
EOF

# ---- 1. release packages ------------------------------------------------------------
t0=$(date +%s)
# (Not the runner's SAN=1, which `make test` passes down in MAKEFLAGS.)
if env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s -j2 SAN=0 deb OUT="$rel/out" \
    DEB_DIR="$rel/deb" WERROR=1 >"$tmp/make.log" 2>&1; then
    ok "${names[0]} ($(($(date +%s) - t0)) s)"
else
    notok "${names[0]}"
    grep -v 'pkg-config\|Package .* was not found\|PKG_CONFIG_PATH' "$tmp/make.log" | indent
fi
arch=$(dpkg --print-architecture)
hubdeb=$(find "$rel/deb" -maxdepth 1 -name "firewatch-hub_*_$arch.deb" 2>/dev/null | head -1)
nodedeb=$(find "$rel/deb" -maxdepth 1 -name "firewatch-node_*_$arch.deb" 2>/dev/null | head -1)
if [ -z "$hubdeb" ] || [ -z "$nodedeb" ]; then
    skip_rest 1 "no packages to install"
    exit 1
fi

# ---- 2. a fresh root ----------------------------------------------------------------
# Never delete a root something is mounted in.
if findmnt -rn -o TARGET | grep -q "^$root/"; then
    notok "${names[1]}: something is still mounted under $root"
    findmnt -rn -o TARGET | grep "^$root/" | indent
    skip_rest 2 "stale mounts"
    exit 1
fi
rm -rf "$root"
mkdir -p "$root" "$work/apt-archives"
mirror=$(host_mirror bookworm)
security=$(host_mirror bookworm-security)
t0=$(date +%s)
if [ -f "$base" ] && [ "$(cat "$base.mirror" 2>/dev/null)" = "$mirror" ] &&
    [ -n "$(find "$base" -mtime -7)" ] && tar -C "$root" -xf "$base" 2>"$tmp/tar.log"; then
    ok "${names[1]} (cached $base, $(($(date +%s) - t0)) s)"
elif rm -rf "$root" && mkdir -p "$root" &&
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1 &&
    {
        echo "deb $mirror bookworm main"
        echo "deb $mirror bookworm-updates main"
        [ -z "$security" ] || echo "deb $security bookworm-security main"
    } >"$root/etc/apt/sources.list" &&
    in_root apt-get update -qq >>"$tmp/debootstrap.log" 2>&1 &&
    tar -C "$root" -cf "$base.new" . && mv "$base.new" "$base" && echo "$mirror" >"$base.mirror"; then
    ok "${names[1]} (from $mirror, $(($(date +%s) - t0)) s; cached as $base)"
else
    notok "${names[1]} (from $mirror)"
    indent <"$tmp/debootstrap.log"
    skip_rest 2 "no root"
    exit 1
fi

# ---- 3. apt-get install ---------------------------------------------------------------
mount -t proc proc "$root/proc"
# As in any chroot or image build: no init system runs here, so invoke-rc.d
# must not start Mosquitto's init script (in the host's network).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/tmp/debs"
cp "$hubdeb" "$nodedeb" "$root/tmp/debs/"
find "$work/apt-archives" -name '*.deb' -exec cp -t "$root/var/cache/apt/archives/" {} +
# installed PKG...: every PKG is installed in the root.
installed() {
    local st
    # shellcheck disable=SC2016 # dpkg-query's own ${field}
    st=$(in_root dpkg-query -W -f='${db:Status-Status}\n' "$@" 2>/dev/null)
    [ "$(grep -cx installed <<<"$st")" -eq $# ]
}
t0=$(date +%s)
# A mirror in mid-sync may fail one index; the base's lists then serve.
in_root apt-get update -qq >"$tmp/apt.log" 2>&1 ||
    echo "# apt-get update in the root reported errors; going on with the lists it has"
if in_root apt-get install -y "/tmp/debs/${hubdeb##*/}" "/tmp/debs/${nodedeb##*/}" >>"$tmp/apt.log" 2>&1 &&
    installed firewatch-hub firewatch-node mosquitto libpaho-mqtt1.3 libsqlite3-0 libmicrohttpd12 libcjson1 \
        libsodium23 libgpiod2; then
    ok "${names[2]}: $(grep -c '^Setting up' "$tmp/apt.log") packages set up ($(($(date +%s) - t0)) s)"
else
    notok "${names[2]}"
    indent 30 <"$tmp/apt.log"
fi
cp -u "$root"/var/cache/apt/archives/*.deb "$work/apt-archives/" 2>/dev/null
# Keep the archive cache to what this run used.
find "$work/apt-archives" -name '*.deb' | while read -r f; do
    [ -f "$root/var/cache/apt/archives/${f##*/}" ] || rm -f "$f"
done

if in_root firewatch-hub --version >"$tmp/ver.log" 2>&1 && in_root firewatchctl --version >>"$tmp/ver.log" 2>&1 &&
    in_root firewatch-node --version >>"$tmp/ver.log" 2>&1; then
    ok "${names[3]} ($(head -1 "$tmp/ver.log"))"
else
    notok "${names[3]}"
    indent <"$tmp/ver.log"
fi

# procs_in_root: the pids of processes whose root is the test's root.
procs_in_root() {
    local p
    for p in /proc/[0-9]*; do [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"; done
}
# mode PATH: "mode user:group" of PATH in the root, named by the root's own
# passwd and group files (stat would name them from the host's).
mode() {
    local m u g
    read -r m u g < <(stat -c '%a %u %g' "$root$1" 2>/dev/null) || return 1
    echo "$m $(awk -F: -v i="$u" '$3 == i { print $1; exit }' "$root/etc/passwd"):$(awk -F: -v i="$g" '$3 == i { print $1; exit }' "$root/etc/group")"
}
wants=$root/etc/systemd/system/multi-user.target.wants
if [ -n "$(id_in passwd firewatch)" ] && id_in group gpio | grep -q . &&
    awk -F: '$1 == "gpio"' "$root/etc/group" | grep -q 'firewatch' &&
    [ "$(mode /var/lib/firewatch)" = "750 firewatch:firewatch" ] &&
    [ "$(mode /var/lib/firewatch-node)" = "750 firewatch:firewatch" ] &&
    [ "$(mode /etc/firewatch/hub.conf)" = "640 root:firewatch" ] &&
    [ "$(mode /etc/firewatch/node.conf)" = "640 root:firewatch" ] &&
    [ -L "$wants/firewatch-hub.service" ] && [ -L "$wants/firewatch-node.service" ] &&
    [ -z "$(procs_in_root)" ]; then
    ok "${names[4]}"
else
    notok "${names[4]}"
    for f in /var/lib/firewatch /var/lib/firewatch-node /etc/firewatch/hub.conf /etc/firewatch/node.conf; do
        echo "# $f: $(mode "$f")"
    done
    grep -E '^(firewatch|gpio):' "$root/etc/group" "$root/etc/passwd" | indent
    find "$wants" -maxdepth 1 -printf '%f -> %l\n' 2>&1 | indent
fi

# ---- 4. the hub: as installed, then as the technician guide sets it up ------------
# Under systemd, mosquitto's and the hub's postinst would start them now, on
# Debian's mosquitto.conf (localhost, anonymous) and the example hub.conf.
ip netns add "$ns" && ip netns exec "$ns" ip link set lo up
health() { ip netns exec "$ns" python3 "$tmp/get.py" http://127.0.0.1:8080/api/v1/health >"$tmp/health.log" 2>&1 &&
    grep -q '"status":"ok"' "$tmp/health.log" && grep -q '"database":true' "$tmp/health.log"; }
if start_unit mosquitto.service >"$tmp/start.log" 2>&1 && start_unit firewatch-hub.service >>"$tmp/start.log" 2>&1 &&
    wait_for 15 health &&
    ip netns exec "$ns" python3 "$tmp/get.py" http://127.0.0.1:8080/ >"$tmp/index.log" 2>&1 &&
    [ "$(head -1 "$tmp/index.log")" = 200 ] && grep -qi '<html' "$tmp/index.log"; then
    ok "${names[5]}"
else
    notok "${names[5]}"
    cat "$tmp/start.log" "$tmp/health.log" "$tmp/index.log" "$tmp/mosquitto.service.log" \
        "$tmp/firewatch-hub.service.log" 2>/dev/null | indent 30
fi

hubpw=$(openssl rand -base64 24)
{
    echo "username firewatch_hub"
    echo "password $hubpw"
    echo "broker tcp://127.0.0.1:1884"
    echo "node_broker_url tcp://127.0.0.1:1883"
} >>"$root/etc/firewatch/hub.conf"
if in_root firewatchctl broker config >"$tmp/brokercfg.log" 2>&1 && [ -f "$root/etc/firewatch/mosquitto.conf" ]; then
    ok "${names[6]}"
else
    notok "${names[6]}"
    indent <"$tmp/brokercfg.log"
fi
# `systemctl edit mosquitto` with the three lines `broker config` printed.
mkdir -p "$root/etc/systemd/system/mosquitto.service.d"
printf '[Service]\nExecStart=\nExecStart=/usr/sbin/mosquitto -c /etc/firewatch/mosquitto.conf\n' \
    >"$root/etc/systemd/system/mosquitto.service.d/override.conf"
if stop_unit mosquitto.service >"$tmp/start.log" 2>&1 && start_unit mosquitto.service >>"$tmp/start.log" 2>&1; then
    ok "${names[7]}"
else
    notok "${names[7]}"
    cat "$tmp/start.log" "$tmp/mosquitto.service.log" 2>/dev/null | indent
fi
hub_in() { grep -q "as firewatch_hub (.*u'firewatch_hub')" "$tmp/mosquitto.service.log"; }
if stop_unit firewatch-hub.service >"$tmp/start.log" 2>&1 && start_unit firewatch-hub.service >>"$tmp/start.log" 2>&1 &&
    wait_for 15 health && wait_for 15 hub_in; then
    ok "${names[8]}"
else
    notok "${names[8]}"
    cat "$tmp/start.log" "$tmp/health.log" "$tmp/firewatch-hub.service.log" 2>/dev/null | indent 30
    indent 10 <"$tmp/mosquitto.service.log"
fi

# ---- 5. a node, provisioned and started ------------------------------------------
node=n-deb-kitchen
# The hub rereads the topology once a second; a node heard before that is
# "unknown" and ignored until its next message (interval_s later), so the
# technician's visit to the house starts once the hub has loaded it.
knows_node() { grep 'topology:' "$tmp/firewatch-hub.service.log" | tail -1 | grep -q ' 1 nodes'; }
if in_ns firewatchctl site add s-deb --name "Package test" >"$tmp/prov.log" 2>&1 &&
    in_ns firewatchctl zone add z-deb --site s-deb >>"$tmp/prov.log" 2>&1 &&
    in_ns firewatchctl household add h-deb --zone z-deb >>"$tmp/prov.log" 2>&1 &&
    in_ns firewatchctl node add "$node" --household h-deb --kind combo --room kitchen --out /root/node.conf \
        >>"$tmp/prov.log" 2>&1 && grep -q "^id $node" "$root/root/node.conf" && wait_for 10 knows_node; then
    ok "${names[9]}"
else
    notok "${names[9]}"
    indent <"$tmp/prov.log"
fi
# Installed where postinst put the example (0640 root:firewatch: the unit
# runs as firewatch), plus what this board lacks: no GPIO chip, so the
# simulated backend with a quiet room.
printf 't_s,temp_c,smoke,batt_pct,button\n0,22.0,0,90,\n86400,22.0,0,90,\n' >"$root/etc/firewatch/quiet.csv"
{
    cat "$root/root/node.conf"
    echo "backend sim"
    echo "scenario /etc/firewatch/quiet.csv"
} >"$root/etc/firewatch/node.conf"
if unit_get firewatch-node.service ExecStartPre | grep -q -- '--check-config' &&
    start_unit firewatch-node.service >"$tmp/start.log" 2>&1; then
    ok "${names[10]}"
    started_node=1
else
    notok "${names[10]}"
    cat "$tmp/start.log" "$tmp/firewatch-node.service.log" 2>/dev/null | indent
    started_node=0
fi
online() { in_ns firewatchctl node list >"$tmp/nodes.log" 2>&1 && grep "$node" "$tmp/nodes.log" | grep -qw online; }
if [ $started_node = 1 ] && wait_for 30 online; then
    ok "${names[11]} ($(grep "$node" "$tmp/nodes.log" | tr -s ' '))"
else
    notok "${names[11]}"
    cat "$tmp/start.log" "$tmp/nodes.log" "$tmp/firewatch-node.service.log" 2>/dev/null | indent 30
    indent 15 <"$tmp/firewatch-hub.service.log"
    indent 15 <"$tmp/mosquitto.service.log"
fi

# ---- 6. stop, purge -------------------------------------------------------------------
if stop_unit firewatch-node.service >"$tmp/stop.log" 2>&1 && stop_unit firewatch-hub.service >>"$tmp/stop.log" 2>&1; then
    ok "${names[12]}"
else
    notok "${names[12]}"
    indent <"$tmp/stop.log"
    tail -5 "$tmp/firewatch-node.service.log" "$tmp/firewatch-hub.service.log" 2>/dev/null | indent
fi
stop_unit mosquitto.service >/dev/null 2>&1
gone() { # gone PKG: dpkg knows it no more (purged, not just removed)
    local st
    # shellcheck disable=SC2016 # dpkg-query's own ${field}
    st=$(in_root dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = not-installed ]
}
purged=0
in_root dpkg --purge firewatch-node firewatch-hub >"$tmp/purge.log" 2>&1 && gone firewatch-hub && gone firewatch-node &&
    purged=1
if [ $purged = 1 ] && [ ! -e "$root/usr/bin/firewatch-hub" ] && [ ! -e "$root/usr/bin/firewatch-node" ] &&
    [ ! -e "$root/etc/firewatch/hub.conf" ] && [ ! -e "$root/etc/firewatch/node.conf" ] &&
    [ ! -e "$wants/firewatch-hub.service" ] && [ ! -e "$wants/firewatch-node.service" ] &&
    [ -f "$root/var/lib/firewatch/hub.db" ]; then
    ok "${names[13]}"
else
    notok "${names[13]}"
    indent <"$tmp/purge.log"
    find "$root/etc/firewatch" "$root/var/lib/firewatch" -maxdepth 1 -printf '%M %u %g %p\n' 2>&1 | indent
fi

umount "$root/proc"
[ "$fails" -eq 0 ] && rm -rf "$root"
[ "$fails" -eq 0 ] || echo "# the root is kept for a look: $root"
exit $((fails > 0))
