#!/bin/sh
# The browser suite: playwright-core (pinned by package-lock.json, installed
# by scripts/deps.sh test) drives Debian's Chromium in two modes:
#   fixture  dashboard.test.mjs against tests/http/serve_fixture (the HTTP
#            server with a fixture database and a fake daemon), and
#            region.test.mjs against serve_fixture --regional (a regional
#            hub's view of three seeded areas);
#   live     live.test.mjs against the real system: Mosquitto, firewatch-hub
#            and a firewatch-fleet whose scripted fire escalates.
# FW_BROWSER=fixture|region|live|all picks (default all; region runs the
# regional suite alone, fixture includes it). Prints "ok - name" lines
# for the runner and fails when either mode fails.
set -u
mode=${FW_BROWSER:-all}
here=$(cd "$(dirname "$0")" && pwd)
root=${FW_ROOT:-$(cd "$here/../.." && pwd)}
build=${FW_BUILD:-$root/build/san}
export FW_ROOT=$root FW_BUILD=$build
for need in node /usr/bin/chromium; do
    if ! command -v "$need" >/dev/null 2>&1; then
        echo "not ok - browser suite: $need is missing (scripts/deps.sh test installs it)"
        exit 1
    fi
done
if [ ! -d "$here/node_modules/playwright-core" ]; then
    npm ci --prefix "$here" --no-audit --no-fund --loglevel=error >&2 || {
        echo "not ok - browser suite: cannot install playwright-core (npm ci in tests/browser)"
        exit 1
    }
fi
rc=0
case $mode in fixture | region | all)
    if [ ! -x "$build/tests/http/serve_fixture" ]; then
        echo "not ok - browser suite: $build/tests/http/serve_fixture is not built"
        rc=1
    else
        [ "$mode" = region ] || node "$here/dashboard.test.mjs" || rc=1
        node "$here/region.test.mjs" || rc=1
    fi
    ;;
esac
case $mode in live | all)
    missing=""
    for b in firewatch-hub firewatchctl firewatch-fleet; do [ -x "$build/bin/$b" ] || missing="$missing $b"; done
    if [ -n "$missing" ]; then
        echo "not ok - live browser suite: not built in $build/bin:$missing"
        rc=1
    elif ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
        echo "not ok - live browser suite: mosquitto is missing (scripts/deps.sh test installs it)"
        rc=1
    else
        node "$here/live.test.mjs" || rc=1
    fi
    ;;
esac
exit $rc
