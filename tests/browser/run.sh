#!/bin/sh
# The browser suite: playwright-core (pinned by package-lock.json, installed
# by scripts/deps.sh test) drives Debian's Chromium against
# tests/http/serve_fixture. Prints "ok - name" lines for the runner.
set -u
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
if [ ! -x "$build/tests/http/serve_fixture" ]; then
    echo "not ok - browser suite: $build/tests/http/serve_fixture is not built"
    exit 1
fi
exec node "$here/dashboard.test.mjs"
