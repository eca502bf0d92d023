// live.test.mjs - the dashboard against the real daemon, end to end.
//
// Starts a private Mosquitto, sets up an area with firewatchctl, runs the
// real firewatch-hub (HTTP on a free port) and a firewatch-fleet of three
// simulated nodes, one of them with a scripted fire (--fire). Debian's
// Chromium, driven by playwright-core, signs in as a watch member made by
// firewatchctl and watches the fire go from the node's heat_ror alarm
// through verification to the zone alarm on the dashboard; the member
// acknowledges, the detector goes back to normal, the member clears, and the
// readiness view scores both zones. Prints "ok - name" / "not ok - name" per
// step and saves screenshots under $FW_BUILD/screenshots/live-*.png.
//
// Environment: FW_ROOT (repository root), FW_BUILD (build directory with
// bin/firewatch-hub, bin/firewatchctl and bin/firewatch-fleet).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { assert, build, report, root, shots, step, tally } from './lib.mjs';

const bin = (name) => join(build, 'bin', name);
mkdirSync(shots, { recursive: true });
const PASSWORD = 'correct horse battery';


const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/* A free loopback port: bind port 0, read it, close. */
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

async function waitFor(what, cond, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function canConnect(port) {
  return new Promise((res) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => { c.destroy(); res(true); });
    c.once('error', () => res(false));
  });
}

const children = [];
/* Starts a program; its output goes to logFile. It is stopped at the end. */
function start(name, file, args, logFile) {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d) => { log += d; writeFileSync(logFile, log); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const entry = { name, child, log: () => log, exited: new Promise((res) => child.on('exit', (code, sig) => res({ code, sig }))) };
  children.push(entry);
  return entry;
}

async function stop(entry, ms = 8000) {
  if (entry.child.exitCode !== null || entry.child.signalCode !== null) return entry.exited;
  entry.child.kill('SIGTERM');
  const timer = setTimeout(() => entry.child.kill('SIGKILL'), ms);
  const r = await entry.exited;
  clearTimeout(timer);
  return r;
}

const dir = mkdtempSync(join(tmpdir(), 'fw-live-'));
const profile = mkdtempSync(join(tmpdir(), 'fw-chromium-'));
const consoleErrors = [];
let context;
let hub;
let fleet;
const overall = setTimeout(() => { console.log('not ok - live browser suite timed out'); process.exit(1); }, 110000);

try {
  const mqttPort = await freePort();
  const broker = `tcp://127.0.0.1:${mqttPort}`;
  writeFileSync(join(dir, 'mosquitto.conf'),
    `listener ${mqttPort} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence false\n`);
  start('mosquitto', '/usr/sbin/mosquitto', ['-c', join(dir, 'mosquitto.conf')], join(dir, 'mosquitto.log'));
  await waitFor('the broker', () => canConnect(mqttPort), 10000);

  const conf = join(dir, 'hub.conf');
  writeFileSync(conf, [
    `broker ${broker}`, `database ${join(dir, 'hub.db')}`, 'client_id hub-live-test', 'verify_s 2', 'batch_ms 50',
    'db_sync_full false', 'http_listen 127.0.0.1:0', `http_web_root ${join(root, 'hub', 'web')}`, 'http_lang en',
    'hub_id live', ''].join('\n'));
  const ctl = (args, input) => {
    const r = spawnSync(bin('firewatchctl'), ['-c', conf, ...args], { input: input || '', encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`firewatchctl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  await step('an area set up with firewatchctl, and a watch member', async () => {
    ctl(['site', 'add', 'ward7', '--name', 'Ward 7']);
    ctl(['zone', 'add', 'alley-12', '--site', 'ward7', '--name', 'Alley 12']);
    ctl(['zone', 'add', 'alley-14', '--site', 'ward7', '--name', 'Alley 14', '--neighbours', 'alley-12']);
    const homes = [['h-1', 'alley-12', '12/7 Le Loi'], ['h-2', 'alley-12', '12/9 Le Loi'], ['h-3', 'alley-14', '14/2 Le Loi']];
    for (const [id, zone, address] of homes) ctl(['household', 'add', id, '--zone', zone, '--address', address]);
    ctl(['node', 'add', 'n-0001', '--household', 'h-1', '--kind', 'combo', '--room', 'kitchen']);
    ctl(['node', 'add', 'n-0002', '--household', 'h-2', '--kind', 'smoke']);
    ctl(['node', 'add', 'n-0003', '--household', 'h-3', '--kind', 'heat']);
    ctl(['user', 'add', 'binh.watch', '--role', 'watch'], PASSWORD + '\n');
  });

  hub = start('firewatch-hub', bin('firewatch-hub'), ['--config', conf], join(dir, 'hub.log'));
  let httpPort = 0;
  await waitFor('the hub to serve HTTP and connect', () => {
    const m = /http: serving on \S+ \(port (\d+)\)/.exec(hub.log());
    if (m) httpPort = Number(m[1]);
    return httpPort > 0 && /connected to/.test(hub.log());
  }, 20000);
  const base = `http://127.0.0.1:${httpPort}`;

  // The fleet: three nodes reporting every 2 s; n-0001's kitchen catches
  // fire 1 s after start (heat_ror about 20 s later, then verification).
  const fleetStart = Date.now();
  fleet = start('firewatch-fleet', bin('firewatch-fleet'),
    ['-b', broker, '-n', '3', '--prefix', 'n', '--interval', '2', '--boot', '5', '--fire', 'n-0001@1', '-q'],
    join(dir, 'fleet.log'));

  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  await step('the member signs in to the real hub and sees the area', async () => {
    await page.goto(base + '/');
    await page.locator('#login:not([hidden])').waitFor();
    await page.fill('#login-user', 'binh.watch');
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.locator('#app:not([hidden])').waitFor();
    await page.locator('.zone[data-zone="alley-12"] .house').first().waitFor();
    assert((await page.locator('.zone').count()) === 2, 'two zones');
    assert((await page.locator('.house').count()) === 3, 'three households');
    await page.locator('#live[data-state="ok"]').waitFor();
  });

  let incident = 0;
  await step('a simulated node\'s fire escalates on the dashboard', async () => {
    const item = page.locator('#banner .alarm-item[data-state="alarm"]');
    await item.waitFor({ timeout: 45000 });
    incident = Number(await item.getAttribute('data-incident'));
    assert(incident > 0, 'an incident id');
    const text = await page.locator('#banner').textContent();
    assert(/FIRE/.test(text) && /12\/7 Le Loi/.test(text), 'banner says fire and where: ' + text);
    await page.locator('.zone[data-zone="alley-12"].alarm').waitFor();
    console.log(`# zone alarm on the dashboard ${Math.round((Date.now() - fleetStart) / 1000)} s after the fleet started`);
    await page.screenshot({ path: join(shots, 'live-alarm.png') });
  });

  await step('acknowledge from the banner', async () => {
    await page.click(`#banner .alarm-item[data-incident="${incident}"] [data-action="ack"]`);
    await page.locator(`#banner .alarm-item[data-incident="${incident}"][data-state="acknowledged"]`).waitFor();
    assert(/Acknowledged by binh\.watch/.test(await page.locator('#banner').textContent()));
    await page.screenshot({ path: join(shots, 'live-acknowledged.png') });
  });

  await step('the detector back to normal, the member clears, the zone alarm ends', async () => {
    // The fire is out: stop the fleet and let the node report alarm_clear.
    await stop(fleet);
    const ev = JSON.stringify({ seq: 1000000, ts: Date.now(), type: 'alarm_clear', cause: 'heat_ror' });
    const p = spawnSync('mosquitto_pub', ['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(mqttPort), '-q', '1',
      '-t', 'firewatch/v1/node/n-0001/event', '-m', ev], { encoding: 'utf8' });
    assert(p.status === 0, 'mosquitto_pub: ' + p.stderr);
    // Clear (retry while the hub has not yet seen the node go back to normal).
    const deadline = Date.now() + 10000;
    for (;;) {
      await page.click(`#banner .alarm-item[data-incident="${incident}"] [data-action="clear"]`);
      try {
        await page.locator('#banner').waitFor({ state: 'hidden', timeout: 1500 });
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    }
    await page.click('.tabs [data-view="incidents"]');
    const card = page.locator(`#incidents-history .incident[data-incident="${incident}"]`);
    await card.waitFor();
    assert(/Cleared/.test(await card.textContent()));
    const r = spawnSync('mosquitto_sub', ['-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(mqttPort), '-t',
      'firewatch/v1/zone/alley-12/alarm', '-C', '1', '-W', '2'], { encoding: 'utf8' });
    assert(/"state":"clear"/.test(r.stdout), 'retained zone alarm: ' + r.stdout);
  });

  await step('readiness per zone with its reasons', async () => {
    await page.click('.tabs [data-view="readiness"]');
    const zones = page.locator('.rd-zone');
    await zones.first().waitFor();
    assert((await zones.count()) === 2, 'two zones scored');
    for (const z of await zones.all()) assert((await z.locator('.reasons li').count()) > 0, 'reasons listed');
    assert(/not commissioned|commission/i.test(await page.locator('.rd-zone[data-zone="alley-12"]').textContent()),
      'uncommissioned detectors are a reason');
    await page.evaluate(() => { const t = document.getElementById('toast'); if (t) t.hidden = true; });
    await page.screenshot({ path: join(shots, 'live-readiness.png') });
  });

  await step('the hub served the API and the stream (metrics)', async () => {
    // The daemon refreshes its part of the page once a second.
    let text = '';
    const deadline = Date.now() + 5000;
    do {
      text = await (await page.request.get(base + '/metrics')).text();
      if (/firewatch_incidents_closed_total\{state="cleared"\} 1/.test(text)) break;
      await sleep(200);
    } while (Date.now() < deadline);
    const daemon = text.slice(text.indexOf('firewatch_messages_received_total'));
    assert(/firewatch_incidents_closed_total\{state="cleared"\} 1/.test(text), 'daemon counters: ' + daemon);
    assert(/firewatch_dashboard_actions_total [1-9]/.test(text), 'dashboard actions counted: ' + daemon);
    assert(/firewatch_messages_received_total [1-9]/.test(text), 'messages counted: ' + daemon);
  });

  await step('no script errors or CSP violations on the page', async () => {
    assert(consoleErrors.filter((e) => !/401|409/.test(e)).length === 0, consoleErrors.join('\n'));
  });
} catch (e) {
  report(false, 'live browser suite', e && e.stack ? e.stack : e);
} finally {
  clearTimeout(overall);
  if (context) await context.close().catch(() => {});
  for (const c of children.slice().reverse()) {
    const r = await stop(c);
    if (c.name === 'firewatch-hub') {
      const clean = r.code === 0;
      report(clean, 'firewatch-hub stops cleanly on SIGTERM', clean ? '' : `exit ${r.code} ${r.sig}\n${c.log().slice(-2000)}`);
    }
  }
  if (tally.failed) {
    for (const f of ['hub.log', 'fleet.log']) {
      try { console.log(`# ${f}:\n# ` + readFileSync(join(dir, f), 'utf8').split('\n').slice(-30).join('\n# ')); } catch (e) { /* none */ }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
  console.log(`# screenshots in ${shots}`);
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exitCode = tally.failed ? 1 : 0;
}
