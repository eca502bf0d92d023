// region.test.mjs - the regional view of the dashboard in a real browser.
//
// Starts tests/http/serve_fixture --regional (the hub's HTTP server as a
// regional hub, over a database seeded with three areas: phuong-7 with a
// fire in alarm and its CAP alert, an-phu stale with its bridge down,
// hoa-binh healthy; tests/http/fixture.c, fx_regional), drives Debian's
// Chromium headless through playwright-core and walks a regional
// coordinator's check: sign in, the alarm banner names the area, each
// area's card shows its readiness, bridge and staleness, the incidents
// across areas link to their CAP alerts, a new fire elsewhere shows up on
// the next 5-second refresh, Vietnamese, a phone screen, and that nothing
// in the view can act on an incident. Prints "ok - name" / "not ok - name"
// per step and saves screenshots under $FW_BUILD/screenshots/region-*.png.
//
// Environment: FW_ROOT (repository root), FW_BUILD (build directory with
// tests/http/serve_fixture).
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { assert, report, shots, startFixture, step, tally, until } from './lib.mjs';

mkdirSync(shots, { recursive: true });
const CAP_NS = 'urn:oasis:names:tc:emergency:cap:1.2';





const fixture = startFixture(['--regional', '--lang', 'en']);
let context;
const profile = mkdtempSync(join(tmpdir(), 'fw-chromium-'));
const consoleErrors = [];
const overall = setTimeout(() => { console.log('not ok - regional browser suite timed out'); process.exit(1); }, 110000);

try {
  const port = await fixture.port();
  const base = `http://127.0.0.1:${port}`;
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 },
    locale: 'en-GB',
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const card = (area) => page.locator(`#region-areas .area-card[data-area="${area}"]`);

  await step('the regional hub says so, and signs in with the same form', async () => {
    const health = await (await page.request.get(base + '/api/v1/health')).json();
    assert(health.mode === 'regional', 'health mode: ' + health.mode);
    await page.goto(base + '/');
    await page.locator('#login:not([hidden])').waitFor();
    await page.fill('#login-user', 'binh.watch');
    await page.fill('#login-password', 'correct horse battery');
    await page.click('#login-form button[type=submit]');
    await page.locator('#app:not([hidden])').waitFor();
    await page.locator('#view-region:not([hidden])').waitFor();
    await card('phuong-7').waitFor();
    assert((await page.locator('#region-areas .area-card').count()) === 3, 'three areas (the removed one is not shown)');
    assert(!(await page.locator('.tabs').isVisible()), 'the single-area tabs are not shown');
    assert(!(await page.locator('#view-area').isVisible()), 'the single-area grid is not shown');
    assert((await page.locator('h1#region-title').textContent()) === 'Regional view');
  });

  await step('the alarm banner names the area in alarm, its zone, state and time', async () => {
    const item = page.locator('#region-banner .region-alarm-list li[data-area="phuong-7"][data-incident="12"]');
    await item.waitFor();
    const text = await item.textContent();
    assert(/Phường 7 · Quận 3/.test(text), 'area name: ' + text);
    assert(/Tổ 3 · Hẻm 45 Lý Chính Thắng/.test(text), 'zone name: ' + text);
    assert(/Fire alarm/.test(text) && /since \d/.test(text) && /min ago/.test(text), 'state and time: ' + text);
    assert(/Fire alarm in 1 area\(s\): Phường 7/.test(await page.locator('#region-banner h2').textContent()));
    assert((await page.locator('#region-banner li').count()) === 1, 'the acknowledged drill is not a fire alarm');
    assert((await page.locator('#region-live').getAttribute('aria-live')) === 'assertive', 'the banner is a live region');
    await page.screenshot({ path: join(shots, 'region-desktop.png'), fullPage: true });
  });

  await step('totals at the top', async () => {
    const total = async (k) => Number(await page.locator(`#region-totals [data-total="${k}"] dd`).textContent());
    assert(await total('areas') === 3, 'areas');
    assert(await total('households') === 20 + 24 + 14, 'households');
    assert(await total('nodes') === 21 + 22 + 13, 'detectors');
    assert(await total('open_incidents') === 2, 'open incidents');
    assert(await total('alarms') === 1, 'alarms');
    assert(await total('stale') === 1, 'stale areas');
  });

  await step('each area card: score, level and its colour, bridge, staleness, reasons', async () => {
    const expect = {
      'phuong-7': { score: '81', level: 'attention', label: 'Needs attention', bridge: 'up', stale: 'false', colour: 'rgb(154, 98, 0)' },
      'an-phu': { score: '60', level: 'not_ready', label: 'Not ready', bridge: 'down', stale: 'true', colour: 'rgb(198, 40, 40)' },
      'hoa-binh': { score: '96', level: 'ready', label: 'Ready', bridge: 'up', stale: 'false', colour: 'rgb(46, 125, 79)' },
    };
    for (const [area, e] of Object.entries(expect)) {
      const c = card(area);
      assert((await c.locator('.score').textContent()) === e.score, `${area} score`);
      assert((await c.getAttribute('data-level')) === e.level, `${area} level`);
      assert((await c.locator(`.chip[data-level="${e.level}"]`).textContent()) === e.label, `${area} level label`);
      const colour = await c.locator('.score').evaluate((el) => getComputedStyle(el).color);
      assert(colour === e.colour, `${area} score colour ${colour}, as the readiness view colours ${e.level}`);
      assert((await c.getAttribute('data-bridge')) === e.bridge, `${area} bridge`);
      assert((await c.locator(`[data-bridge="${e.bridge}"]`).textContent()) === (e.bridge === 'up' ? 'Link up' : 'Link down'));
      assert((await c.getAttribute('data-stale')) === e.stale, `${area} stale`);
      assert((await c.locator('.stale-warning').count()) === (e.stale === 'true' ? 1 : 0), `${area} stale warning`);
    }
    const warn = await card('an-phu').locator('.stale-warning').textContent();
    const m = /^Stale — not heard from for (\d+) min$/.exec(warn);
    assert(m && Math.abs(Number(m[1]) - 47) <= 1, 'stale warning: ' + warn);
    const an = await card('an-phu').textContent();
    assert(/ap-1 \(54\): 5 of 14 households have no healthy detector/.test(an), 'worst zone first with its reasons: ' + an);
    assert(/5 of 12 detectors offline/.test(an), 'reasons: ' + an);
    assert(/24 households · 22 detectors/.test(an), 'households and detectors: ' + an);
    assert(/1 fire alarm/.test(await card('phuong-7').locator('.area-head').textContent()), 'the card in alarm says so');
    assert(/2 open incident/.test(await card('phuong-7').textContent()), 'open incidents');
    assert(await card('phuong-7').evaluate((el) => el.classList.contains('alarm')), 'the card in alarm is outlined');
    // The area in alarm first, then the stale one.
    const order = await page.locator('#region-areas .area-card').evaluateAll((els) => els.map((e) => e.dataset.area));
    assert(order.join(',') === 'phuong-7,an-phu,hoa-binh', 'order: ' + order);
  });

  await step('incidents across areas, open first, each linking to its CAP alert', async () => {
    const rows = page.locator('#region-incidents tbody tr');
    await rows.first().waitFor();
    assert((await rows.count()) === 5, 'five incidents');
    const open = await rows.evaluateAll((els) => els.map((e) => e.classList.contains('open')));
    assert(open.join(',') === 'true,true,false,false,false', 'open first: ' + open);
    const first = rows.first();
    assert((await first.getAttribute('data-area')) === 'phuong-7' && (await first.getAttribute('data-incident')) === '12');
    const link = first.locator('a[data-cap]');
    const href = await link.getAttribute('href');
    assert(href === '/api/v1/region/areas/phuong-7/incidents/12/cap', 'href ' + href);
    assert(/CAP alert of incident #12 in Phường 7/.test(await link.getAttribute('aria-label')), 'the link says what it is');
    // Following the link with the page's session returns the alert as the area sent it.
    const res = await page.request.get(base + href);
    assert(res.status() === 200, 'status ' + res.status());
    assert(/^application\/cap\+xml/.test(res.headers()['content-type']), 'type ' + res.headers()['content-type']);
    const xml = await res.text();
    assert(xml.includes(CAP_NS), 'the CAP 1.2 namespace');
    assert(xml.includes('<identifier>firewatch-phuong-7-12-2</identifier>'), 'the area\'s identifier');
    // The page's own fetch, as a click would send it.
    const inPage = await page.evaluate(async (u) => { const r = await fetch(u); return { s: r.status, t: await r.text() }; }, href);
    assert(inPage.s === 200 && inPage.t.includes(CAP_NS), 'in-page fetch of the link');
    assert((await page.locator('#region-incidents a[data-cap]').count()) === 2, 'the open fire and the cleared one have alerts');
    const cleared = page.locator('#region-incidents tr[data-area="hoa-binh"][data-incident="7"]');
    assert(/Cleared/.test(await cleared.textContent()) && /Phường Hòa Bình/.test(await cleared.textContent()));
  });

  await step('a read-only view: no action buttons, and the hub refuses actions', async () => {
    assert((await page.locator('#view-region button').count()) === 0, 'no buttons in the regional view');
    assert((await page.locator('#region-banner button, #region-banner [data-action]').count()) === 0, 'no actions in the banner');
    const csrf = await page.evaluate(() => state.csrf);
    const res = await page.request.post(base + '/api/v1/incidents/12/acknowledge', { headers: { 'X-CSRF-Token': csrf } });
    assert(res.status() === 403, 'acknowledge on a regional hub: ' + res.status());
    assert(/act on the area's own hub/.test((await res.json()).error), 'and says where to act');
  });

  await step('a new fire in a quiet area shows on the next refresh (every 5 s)', async () => {
    const answer = await fixture.command('area-escalate hoa-binh to-1');
    const id = Number(/^escalated (\d+)$/.exec(answer)[1]);
    assert(id > 0, answer);
    const t0 = Date.now();
    await page.locator(`#region-banner li[data-area="hoa-binh"][data-incident="${id}"]`).waitFor({ timeout: 8000 });
    console.log(`# new alarm on screen after ${Date.now() - t0} ms`);
    assert(/Fire alarm in 2 area\(s\)/.test(await page.locator('#region-banner h2').textContent()));
    await page.locator('#region-totals [data-total="alarms"] dd', { hasText: '2' }).waitFor();
    await page.locator('#region-areas .area-card[data-area="hoa-binh"].alarm').waitFor();
    await page.screenshot({ path: join(shots, 'region-two-alarms.png'), fullPage: true });
  });

  await step('Vietnamese labels', async () => {
    await page.click('#lang-toggle');
    await page.locator('#region-title', { hasText: 'Tổng quan toàn vùng' }).waitFor();
    assert((await page.locator('#region-incidents thead th').first().textContent()) === 'Khu vực');
    const warn = await card('an-phu').locator('.stale-warning').textContent();
    assert(/^Dữ liệu cũ — không nhận được tin trong \d+ phút$/.test(warn), 'stale warning: ' + warn);
    assert(/5\/12 đầu báo mất kết nối/.test(await card('an-phu').textContent()), 'reasons in Vietnamese');
    assert((await card('phuong-7').locator('.chip[data-level]').textContent()) === 'Cần chú ý');
    assert((await card('an-phu').locator('[data-bridge="down"]').textContent()) === 'Mất kết nối');
    assert(/Báo cháy tại 2 khu vực/.test(await page.locator('#region-banner h2').textContent()));
    assert((await page.locator('#region-incidents a[data-cap]').first().textContent()) === 'Cảnh báo CAP');
    await page.locator('html[lang="vi"]').waitFor();
  });

  await step('a phone: no sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await until(async () => (await overflow()) <= 1, 'the page to fit the phone', 5000)
      .catch(async (e) => { throw new Error(`${e.message}: ${await overflow()} px too wide`); });
    assert(await page.locator('#region-incidents thead').evaluate((el) => el.getBoundingClientRect().height <= 1), 'the table reads as labelled blocks');
    await page.screenshot({ path: join(shots, 'region-phone-vi.png'), fullPage: true });
  });

  await step('sign out stops the view', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.click('#logout');
    await page.locator('#login:not([hidden])').waitFor();
    const res = await page.request.get(base + '/api/v1/region');
    assert(res.status() === 401, 'status ' + res.status());
    assert(await page.evaluate(() => region.timer === null && !region.running), 'no more polling');
  });

  await step('English and Vietnamese have the same strings, and every label has one', async () => {
    const en = await (await page.request.get(base + '/i18n/en.json')).json();
    const vi = await (await page.request.get(base + '/i18n/vi.json')).json();
    const missing = Object.keys(en).filter((k) => !(k in vi)).concat(Object.keys(vi).filter((k) => !(k in en)));
    assert(missing.length === 0, 'only in one language: ' + missing.join(', '));
    const labels = await page.locator('[data-i18n]').evaluateAll((els) => els.map((e) => e.dataset.i18n));
    const unlabelled = labels.filter((k) => !(k in en));
    assert(unlabelled.length === 0, 'labels without a string: ' + unlabelled.join(', '));
    const src = await (await page.request.get(base + '/region.js')).text();
    const used = [...src.matchAll(/t\('((?:region|readiness|state|banner|zone|incidents)\.[a-z_.]+[a-z_])'/g)].map((m) => m[1]);
    const unknown = used.filter((k) => !(k in en));
    assert(used.length > 20 && unknown.length === 0, 'region.js keys without a string: ' + unknown.join(', '));
  });

  await step('no script errors or CSP violations on the page', async () => {
    assert(consoleErrors.filter((e) => !/401/.test(e)).length === 0, consoleErrors.join('\n'));
  });
} catch (e) {
  report(false, 'regional browser suite', e && e.stack ? e.stack : e);
} finally {
  clearTimeout(overall);
  if (context) await context.close().catch(() => {});
  await fixture.stop();
  rmSync(profile, { recursive: true, force: true });
  console.log(`# screenshots in ${shots}`);
  console.log(`${tally.passed} passed, ${tally.failed} failed`);
  process.exitCode = tally.failed ? 1 : 0;
}
