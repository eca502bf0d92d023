#!/bin/sh
# Checks that every Debian package Firewatch needs to build, test or run its
# demo is installed, and installs the missing ones with apt-get when running
# as root. Without root it prints the exact command to run and fails, so a
# newcomer never has to guess. Quick when nothing is missing: one dpkg-query.
#
# usage: scripts/deps.sh [build|test|demo|all]   (default: all)
set -eu

# libmosquitto-dev serves only the fleet simulator, which runs thousands of
# clients on one epoll loop (docs/internals/fleet.md says why not paho).
build="gcc make pkg-config libc6-dev libpaho-mqtt-dev libsqlite3-dev libgpiod-dev
       libmicrohttpd-dev libcjson-dev libsodium-dev libmosquitto-dev"
# Tests: the broker and its clients, the sqlite3 shell, clang for libFuzzer,
# xmllint for schema checks, openssl for TLS fixtures, python3 for helpers.
# The browser suites drive Debian's Chromium with playwright-core from npm;
# the packaging suite checks man pages with groff and builds .debs with
# dpkg-deb; the Home Assistant suite renders discovery templates with Jinja2.
test="$build mosquitto mosquitto-clients sqlite3 clang libclang-rt-14-dev
      libxml2-utils openssl procps chromium nodejs groff-base man-db dpkg-dev
      python3 python3-jinja2 systemd"
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
for p in $(printf '%s\n' $want | sort -u); do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing="$missing $p"
done

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

if [ -z "$missing" ]; then
    npm_step "${1:-all}"
    exit $?
fi

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "firewatch: missing Debian packages:$missing" >&2
    echo "firewatch: install them with:  sudo apt-get update && sudo $cmd" >&2
    exit 1
fi
echo "firewatch: installing missing packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
log=${TMPDIR:-/tmp}/firewatch-apt.log
# shellcheck disable=SC2086
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } </dev/null >"$log" 2>&1; then
    tail -30 "$log" >&2
    echo "firewatch: apt-get failed (full log: $log)" >&2
    exit 1
fi
echo "firewatch: packages installed" >&2
npm_step "${1:-all}"
