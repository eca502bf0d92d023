// lib.mjs - what the browser suites share: where things are, the
// "ok - name" / "not ok - name" harness scripts/run-tests.sh counts, a
// condition poll with a deadline, and the fixture server
// (tests/http/serve_fixture) driven over its stdin.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const root = resolve(process.env.FW_ROOT || join(import.meta.dirname, '..', '..'));
export const build = resolve(process.env.FW_BUILD || join(root, 'build', 'san'));
export const shots = join(build, 'screenshots');
mkdirSync(shots, { recursive: true });

export const tally = { passed: 0, failed: 0 };
export function report(ok, name, why) {
  if (ok) tally.passed++; else tally.failed++;
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}`);
  if (!ok && why) console.log(`#   ${String(why).split('\n').join('\n#   ')}`);
}
export async function step(name, fn) {
  try {
    await fn();
    report(true, name);
  } catch (e) {
    report(false, name, e && e.stack ? e.stack : e);
  }
}
export function assert(cond, msg) { if (!cond) throw new Error(msg || 'assertion failed'); }

// Polls fn until it returns a truthy value or timeout ms pass; returns the
// value or throws with the last one seen. For conditions a locator cannot
// express (numbers computed in the page).
export async function until(fn, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

// Starts serve_fixture with args; port() waits for its "port N" line,
// command(cmd) sends one line and waits for the answer, stop() ends it.
export function startFixture(args) {
  const bin = join(build, 'tests', 'http', 'serve_fixture');
  const child = spawn(bin, args, { env: { ...process.env, FW_ROOT: root }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (l) => { const w = waiting.shift(); if (w) w(l); });
  const next = (ms) => new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error('serve_fixture did not answer')), ms);
    waiting.push((l) => { clearTimeout(timer); res(l); });
  });
  return {
    child,
    async port() {
      const l = await next(30000);
      const m = /^port (\d+)$/.exec(l);
      if (!m) throw new Error('unexpected: ' + l);
      return Number(m[1]);
    },
    async command(cmd) {
      child.stdin.write(cmd + '\n');
      return next(10000);
    },
    stop() {
      try { child.stdin.end('quit\n'); } catch (e) { /* already gone */ }
      return new Promise((res) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); res(); }, 5000);
        child.on('exit', () => { clearTimeout(timer); res(); });
        if (child.exitCode !== null) { clearTimeout(timer); res(); }
      });
    },
  };
}
