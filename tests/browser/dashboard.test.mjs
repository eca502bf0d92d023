// dashboard.test.mjs - the dashboard end to end in a real browser.
//
// Starts tests/http/serve_fixture (the hub's HTTP server with a fixture
// database and a fake daemon behind its hooks), drives Debian's Chromium
// headless through playwright-core, and walks a watch member's evening:
// sign in, see the area, a node's fire escalates (injected through the
// fixture, published on the live stream), the banner and sound come up,
// acknowledge, clear, check readiness, a node's chart, Vietnamese, a phone
// screen. Prints "ok - name" / "not ok - name" per step and saves
// screenshots under $FW_BUILD/screenshots/ for reviewers.
//
// Environment: FW_ROOT (repository root), FW_BUILD (build directory with
// tests/http/serve_fixture), FW_HUB_URL (optional: test a running hub
// instead; the escalation steps then need FW_ESCALATE_CMD).
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { assert, report, shots, startFixture, step, tally } from './lib.mjs';

mkdirSync(shots, { recursive: true });




const fixture = startFixture(['--lang', 'vi']);
let context;
const profile = mkdtempSync(join(tmpdir(), 'fw-chromium-'));
const consoleErrors = [];
const overall = setTimeout(() => { console.log('not ok - browser suite timed out'); process.exit(1); }, 110000);

try {
  const port = await fixture.port();
  const base = `http://127.0.0.1:${port}`;
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

  await step('login page in the site language (Vietnamese)', async () => {
    await page.goto(base + '/');
    await page.locator('#login:not([hidden])').waitFor();
    assert((await page.locator('#login h1').textContent()) === 'Đăng nhập', 'title is not Vietnamese');
  });

  await step('wrong password is refused with a message', async () => {
    await page.click('[data-lang="en"]');
    await page.locator('#login h1', { hasText: 'Sign in' }).waitFor();
    await page.fill('#login-user', 'binh.watch');
    await page.fill('#login-password', 'not my password');
    await page.click('#login-form button[type=submit]');
    await page.locator('#login-error:not([hidden])').waitFor();
    assert(/Wrong user name or password/.test(await page.locator('#login-error').textContent()));
  });

  await step('a watch member signs in and sees the area', async () => {
    await page.fill('#login-password', 'correct horse battery');
    await page.click('#login-form button[type=submit]');
    await page.locator('#app:not([hidden])').waitFor();
    await page.locator('.zone[data-zone="to-1"] .house').first().waitFor();
    assert((await page.locator('.zone').count()) === 2, 'two zones');
    assert((await page.locator('.house').count()) === 14, 'fourteen households');
    assert((await page.locator('.house.trouble').count()) >= 2, 'households with faults are marked');
    await page.locator('#live[data-state="ok"]').waitFor();
    await page.screenshot({ path: join(shots, 'dashboard-area.png') });
  });

  let incident = 0;
  await step('a fire escalates: banner and sound at once', async () => {
    const t0 = Date.now();
    const answer = await fixture.command('escalate to-1 n-104');
    incident = Number(/^escalated (\d+)$/.exec(answer)[1]);
    await page.locator(`#banner .alarm-item[data-incident="${incident}"][data-state="alarm"]`).waitFor({ timeout: 5000 });
    const text = await page.locator('#banner').textContent();
    assert(/FIRE/.test(text) && /Fire alarm in/.test(text), 'banner says fire: ' + text);
    assert(/12\/7 Lê Lợi/.test(text), 'banner says where: ' + text);
    const ringing = await page.evaluate(() => sound.timer !== null && sound.ctx !== null);
    assert(ringing, 'the alarm sound is playing');
    await page.locator('.zone[data-zone="to-1"].alarm').waitFor();
    await page.locator('.house.alarm[data-household="h-104"]').waitFor();
    console.log(`# banner after ${Date.now() - t0} ms`);
    await page.screenshot({ path: join(shots, 'dashboard-alarm.png') });
  });

  await step('acknowledge: the banner says who responded, the sound stops', async () => {
    await page.click(`#banner .alarm-item[data-incident="${incident}"] [data-action="ack"]`);
    await page.locator(`#banner .alarm-item[data-incident="${incident}"][data-state="acknowledged"]`).waitFor();
    assert(/Acknowledged by binh\.watch/.test(await page.locator('#banner').textContent()));
    assert(await page.evaluate(() => sound.timer === null), 'sound stopped');
    await page.screenshot({ path: join(shots, 'dashboard-acknowledged.png') });
  });

  await step('clear: the banner goes and the history shows it', async () => {
    await page.click(`#banner .alarm-item[data-incident="${incident}"] [data-action="clear"]`);
    await page.locator('#banner').waitFor({ state: 'hidden' });
    await page.click('.tabs [data-view="incidents"]');
    const card = page.locator(`#incidents-history .incident[data-incident="${incident}"]`);
    await card.waitFor();
    assert(/Cleared/.test(await card.textContent()));
  });

  await step('readiness per zone with its reasons', async () => {
    await page.click('.tabs [data-view="readiness"]');
    const zones = page.locator('.rd-zone');
    await zones.first().waitFor();
    assert((await zones.count()) === 2, 'two zones scored');
    for (const z of await zones.all()) {
      const score = Number(await z.locator('.score').textContent());
      assert(score > 0 && score < 100, 'score ' + score);
      assert((await z.locator('.reasons li').count()) > 0, 'reasons listed');
    }
    assert(/offline/.test(await page.locator('.rd-zone[data-zone="to-2"]').textContent()), 'the offline detector is a reason');
    await page.evaluate(() => { document.getElementById('toast').hidden = true; });
    await page.screenshot({ path: join(shots, 'dashboard-readiness.png') });
  });

  await step('detector list and a temperature chart', async () => {
    await page.click('.tabs [data-view="nodes"]');
    await page.locator('#nodes-table tbody tr').first().waitFor();
    assert((await page.locator('#nodes-table tbody tr').count()) === 13, '13 detectors');
    assert(/Offline/.test(await page.locator('tr[data-node="n-205"]').textContent()));
    await page.click('tr[data-node="n-101"] button');
    await page.locator('#chart-note', { hasText: '5-minute' }).waitFor();
    await page.click('#chart-range [data-span="2592000000"]');
    await page.locator('#chart-note', { hasText: 'Hourly' }).waitFor();
    const inked = await page.evaluate(() => {
      const c = document.getElementById('chart');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++;
      return n;
    });
    assert(inked > 2000, 'the chart drew something: ' + inked);
    await page.evaluate(() => { document.getElementById('toast').hidden = true; });
    await page.screenshot({ path: join(shots, 'dashboard-nodes.png') });
  });

  await step('monthly report opens as a printable page', async () => {
    await page.click('.tabs [data-view="report"]');
    const href = await page.locator('#report-html').getAttribute('href');
    const res = await page.request.get(base + href);
    assert(res.status() === 200, 'status ' + res.status());
    assert(/Monthly readiness report/.test(await res.text()));
  });

  await step('a drill from the area view, shown as a drill', async () => {
    await page.click('.tabs [data-view="area"]');
    page.once('dialog', (d) => d.accept());
    await page.click('.zone[data-zone="to-2"] .zone-foot button');
    const item = page.locator('#banner .alarm-item.drill');
    await item.waitFor();
    assert(/DRILL/.test(await item.textContent()));
    await item.locator('[data-action="ack"]').click();
    await page.locator('#banner [data-action="clear"]').click();
    await page.locator('#banner').waitFor({ state: 'hidden' });
  });

  await step('Vietnamese on a phone', async () => {
    await page.click('#lang-toggle');
    await page.locator('.tabs [data-view="area"]', { hasText: 'Khu vực' }).waitFor();
    await page.setViewportSize({ width: 390, height: 844 });
    await fixture.command('escalate to-2 n-201');
    await page.locator('#banner .alarm-item[data-state="alarm"]').waitFor({ timeout: 5000 });
    assert(/CHÁY/.test(await page.locator('#banner').textContent()));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 1, 'no sideways scrolling on a phone: ' + overflow);
    await page.evaluate(() => { document.getElementById('toast').hidden = true; });
    await page.screenshot({ path: join(shots, 'dashboard-phone-vi.png') });
    await page.click('#banner [data-action="ack"]');
    await page.click('#banner [data-action="clear"]');
    await page.locator('#banner').waitFor({ state: 'hidden' });
  });

  await step('sign out ends the session', async () => {
    await page.click('#logout');
    await page.locator('#login:not([hidden])').waitFor();
    const res = await page.request.get(base + '/api/v1/zones');
    assert(res.status() === 401, 'status ' + res.status());
  });

  await step('no script errors or CSP violations on the page', async () => {
    assert(consoleErrors.filter((e) => !/401/.test(e)).length === 0, consoleErrors.join('\n'));
  });
} catch (e) {
  report(false, 'browser suite', e && e.stack ? e.stack : e);
} finally {
  clearTimeout(overall);
  if (context) await context.close().catch(() => {});
  await fixture.stop();
  rmSync(profile, { recursive: true, force: true });
  console.log(`# screenshots in ${shots}`);
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exitCode = tally.failed ? 1 : 0;
}
