#!/bin/sh
# Checks that every Debian package Firewatch needs to build, test or run its
# demo is installed, and installs the missing ones with apt-get when running
# as root. Without root it prints the exact command to run and fails, so a
# newcomer never has to guess. Quick when nothing is missing: one dpkg-query.
#
# usage: scripts/deps.sh [build|test|demo|all]   (default: all)
#
# For `test` and `all` it also prepares the node's cross builds
# (tests/cap/test_cross.sh, docs/packaging.md): the arm64 and armhf foreign
# architectures, Debian's cross compilers, and one sysroot per architecture
# under build/cross-sysroot/ made of the target's library packages.
set -eu

# libmosquitto-dev serves only the fleet simulator, which runs thousands of
# clients on one epoll loop (docs/internals/fleet.md says why not paho).
build="gcc make pkg-config libc6-dev libpaho-mqtt-dev libsqlite3-dev libgpiod-dev
       libmicrohttpd-dev libcjson-dev libsodium-dev libmosquitto-dev"
# The node's cross builds: the compilers come from amd64 packages; the
# target's libraries are not installed with multiarch (Multi-Arch: same needs
# the very same version for every architecture, and a native package a point
# release behind the mirror, or a mirror whose foreign indexes lag, makes apt
# want to remove native -dev packages), but unpacked from the target's .debs
# into build/cross-sysroot/<arch> (cross_step below). The packages: what the
# node links, what those link (paho: OpenSSL), and libc6 for the NEEDED check.
cross_archs="arm64 armhf"
cross_tools="crossbuild-essential-arm64 crossbuild-essential-armhf"
cross_pkgs="libc6 libcjson1 libcjson-dev libgpiod2 libgpiod-dev libpaho-mqtt1.3 libpaho-mqtt-dev libssl3"
cross_dir=build/cross-sysroot
# Tests: the broker and its clients, the sqlite3 shell, clang for libFuzzer,
# xmllint for schema checks, openssl for TLS fixtures, python3 for helpers.
# The browser suites drive Debian's Chromium with playwright-core from npm;
# the packaging suite checks man pages with groff and builds .debs with
# dpkg-deb; the Home Assistant suite renders discovery templates with Jinja2;
# the install suite bootstraps a bookworm root with debootstrap and runs the
# services in their own network namespace (ip, from iproute2).
test="$build mosquitto mosquitto-clients sqlite3 clang libclang-rt-14-dev
      libxml2-utils openssl procps chromium nodejs groff-base man-db dpkg-dev
      python3 python3-jinja2 systemd $cross_tools debootstrap iproute2"
demo="$build mosquitto mosquitto-clients sqlite3 procps"

case "${1:-all}" in
    build) want=$build ;;
    test) want=$test ;;
    demo) want=$demo ;;
    all) want="$test $demo" ;;
    *) echo "usage: $0 [build|test|demo|all]" >&2; exit 2 ;;
esac

# dpkg-query prints one line per known package; anything not "installed" is missing.
missing=""
# shellcheck disable=SC2086 # $want is a list of words
for p in $(printf '%s\n' $want | sort -u); do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing="$missing $p"
done
# The foreign architectures the cross sysroots come from.
archs=""
case "${1:-all}" in
    test | all)
        for a in $cross_archs; do
            dpkg --print-foreign-architectures | grep -qx "$a" || archs="$archs $a"
        done
        ;;
esac

# npm modules for the browser suites, pinned by tests/browser/package-lock.json.
# npm comes with the machine's Node.js; Debian's npm package is the fallback.
npm_step() {
    case "${1:-all}" in test|all) ;; *) return 0 ;; esac
    [ -f tests/browser/package-lock.json ] || return 0
    [ -d tests/browser/node_modules/playwright-core ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "firewatch: npm is missing; install it with:  sudo apt-get install -y npm" >&2
            return 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm </dev/null >&2
    fi
    echo "firewatch: installing the browser suites' npm modules (tests/browser)" >&2
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error </dev/null >&2
}

# One sysroot per foreign architecture: the target's packages of $cross_pkgs
# (the versions apt would install), fetched with apt-get download and
# unpacked with dpkg -x; each package's file list is kept in .pkgs/ so the
# cross suite can tell which package ships a library. Stamped with the
# package list, so a rerun with the same list costs one file read.
cross_step() {
    case "${1:-all}" in test|all) ;; *) return 0 ;; esac
    for a in $cross_archs; do
        sr=$cross_dir/$a
        [ "$(cat "$sr/.stamp" 2>/dev/null)" = "$cross_pkgs" ] && continue
        echo "firewatch: making the $a sysroot for the node's cross build ($sr)" >&2
        # A machine whose apt lists were cleaned has the architecture but no index.
        if ! apt-cache show --no-all-versions "libc6:$a" >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
            apt-get update -qq </dev/null >"${TMPDIR:-/tmp}/firewatch-apt.log" 2>&1 ||
                echo "firewatch: apt-get update reported errors; trying with the indexes it has" >&2
        fi
        rm -rf "$sr" "$sr.debs" && mkdir -p "$sr/.pkgs" "$sr.debs"
        # shellcheck disable=SC2046,SC2086
        if ! (cd "$sr.debs" && apt-get download -qq $(printf "%s:$a " $cross_pkgs)) </dev/null >"$sr.log" 2>&1; then
            tail -20 "$sr.log" >&2
            echo "firewatch: apt-get download of the $a libraries failed; the $a index may be missing:" >&2
            echo "firewatch:   sudo dpkg --add-architecture $a && sudo apt-get update" >&2
            return 1
        fi
        for d in "$sr.debs"/*.deb; do
            dpkg-deb -x "$d" "$sr" || return 1
            dpkg-deb --fsys-tarfile "$d" | tar -t | sed 's|^\./|/|' >"$sr/.pkgs/$(dpkg-deb -f "$d" Package).list"
        done
        rm -rf "$sr.debs" "$sr.log"
        echo "$cross_pkgs" >"$sr/.stamp"
    done
}

if [ -z "$missing$archs" ]; then
    npm_step "${1:-all}"
    cross_step "${1:-all}"
    exit $?
fi

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    for a in $archs; do
        echo "firewatch: missing foreign architecture $a; add it with:  sudo dpkg --add-architecture $a" >&2
    done
    if [ -n "$missing" ]; then
        echo "firewatch: missing Debian packages:$missing" >&2
        echo "firewatch: install them with:  sudo apt-get update && sudo $cmd" >&2
    else
        echo "firewatch: then:  sudo apt-get update" >&2
    fi
    exit 1
fi
for a in $archs; do
    echo "firewatch: adding the foreign architecture $a (for the node's cross build)" >&2
    dpkg --add-architecture "$a"
done
echo "firewatch: installing missing packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
log=${TMPDIR:-/tmp}/firewatch-apt.log
# A failed index (a mirror in mid-sync) need not stop the install: apt keeps
# the lists it had, and the install below fails clearly if they lack a package.
if ! apt-get update -qq </dev/null >"$log" 2>&1; then
    grep -E '^(E|W):' "$log" | head -5 >&2
    echo "firewatch: apt-get update reported errors; trying with the indexes it has (log: $log)" >&2
fi
# shellcheck disable=SC2086
if [ -n "$missing" ] && ! apt-get install -y -qq --no-install-recommends $missing </dev/null >>"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "firewatch: apt-get failed (full log: $log)" >&2
    exit 1
fi
echo "firewatch: packages installed" >&2
npm_step "${1:-all}"
cross_step "${1:-all}"
