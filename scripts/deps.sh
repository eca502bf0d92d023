#!/bin/sh
# Checks that every Debian package Firewatch needs to build, test or run its
# demo is installed, and installs the missing ones with apt-get when running
# as root. Without root it prints the exact command to run and fails, so a
# newcomer never has to guess. Quick when nothing is missing: one dpkg-query.
#
# usage: scripts/deps.sh [build|test|demo|all]   (default: all)
set -eu

build="gcc make pkg-config libc6-dev libpaho-mqtt-dev libsqlite3-dev libgpiod-dev
       libmicrohttpd-dev libcjson-dev libsodium-dev"
# Tests: the broker and its clients, the sqlite3 shell, clang for libFuzzer,
# xmllint for schema checks, openssl for TLS fixtures, python3 for helpers.
test="$build mosquitto mosquitto-clients sqlite3 clang libclang-rt-14-dev
      libxml2-utils openssl procps"
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

[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "firewatch: missing Debian packages:$missing" >&2
    echo "firewatch: install them with:  sudo apt-get update && sudo $cmd" >&2
    exit 1
fi
echo "firewatch: installing missing packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing </dev/null >&2
echo "firewatch: packages installed" >&2
