/*
 * app.js - the Firewatch dashboard. Plain JavaScript, no framework and no
 * network beyond the hub: it reads the JSON API, listens to the live stream
 * (Server-Sent Events) and redraws. Every piece of text from the database is
 * put on the page with textContent, never as HTML. Strings for people come
 * from i18n/<lang>.json; the site's default language is the hub's, and a
 * user's choice is remembered in this browser.
 */
'use strict';

const API = '/api/v1';
const state = {
  lang: 'en',
  strings: {},
  mode: 'area', /* /api/v1/health's: "regional" shows region.js's view instead */
  me: null,
  csrf: '',
  view: 'area',
  site: null,
  zones: [],
  households: [],
  nodes: [],
  troubles: [],
  active: [],
  history: [],
  readiness: [],
  chart: { node: null, span: 172800000 },
  muted: false,
  /* The newest state heard for each incident, from the stream or our own
   * actions. Incident states only move forward, so a database read that is
   * a moment behind the hub (its writer commits after it answers) can never
   * bring a banner back. */
  known: new Map(),
};

const RANK = { verifying: 0, alarm: 1, acknowledged: 2, cleared: 3, dismissed: 3 };

function learn(id, fields) {
  const old = state.known.get(id);
  if (!old || RANK[fields.state] >= RANK[old.state]) state.known.set(id, { ...old, ...fields, at: Date.now() });
}

/* Applies what we know to rows read from the database. */
function merge(rows) {
  return rows.map((r) => {
    const k = state.known.get(r.id);
    return k && RANK[k.state] > RANK[r.state] ? { ...r, ...k } : r;
  });
}

/* --- Small helpers --------------------------------------------------------- */

function $(id) { return document.getElementById(id); }

function t(key, vars) {
  let s = state.strings[key];
  if (s === undefined) s = key;
  if (vars) for (const k of Object.keys(vars)) s = s.split('{' + k + '}').join(String(vars[k]));
  return s;
}

/* Builds an element; children are nodes or strings (set as text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'style') for (const [p, pv] of Object.entries(v)) el.style.setProperty(p, pv);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmtTime(ms) {
  if (!ms) return '–';
  return new Date(ms).toLocaleString(state.lang === 'vi' ? 'vi-VN' : 'en-GB',
    { hour: '2-digit', minute: '2-digit', day: '2-digit', month: '2-digit' });
}

function fmtAgo(ms) {
  if (!ms) return t('nodes.never');
  const d = Date.now() - ms;
  if (d < 90000) return t('time.just_now');
  if (d < 3600000) return t('time.min_ago', { n: Math.round(d / 60000) });
  if (d < 86400000 * 2) return t('time.h_ago', { n: Math.round(d / 3600000) });
  return t('time.d_ago', { n: Math.round(d / 86400000) });
}

function fmtDur(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return t('time.dur', { m: Math.floor(s / 60), s: String(s % 60).padStart(2, '0') });
}

function toast(msg) {
  const el = $('toast');
  el.textContent = msg;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') opt.headers['X-CSRF-Token'] = state.csrf;
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  const res = await fetch(API + path, opt);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401 && path !== '/session') { showLogin(); }
  return { status: res.status, ok: res.ok, data, retry: res.headers.get('Retry-After') };
}

/* --- Language -------------------------------------------------------------- */

async function loadLang(lang) {
  const res = await fetch('/i18n/' + lang + '.json');
  state.strings = await res.json();
  state.lang = lang;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  $('lang-toggle').textContent = t('lang.other');
}

async function switchLang(lang) {
  localStorage.setItem('fw_lang', lang);
  await loadLang(lang);
  if (state.me) { if (state.mode === 'regional') region.render(); else renderAll(); }
}

/* --- Sound: a beep pattern made by WebAudio, no audio file. ---------------- */

const sound = {
  ctx: null,
  timer: null,
  unlock() {
    /* Browsers allow audio only after a user gesture: sign-in is one. */
    if (!this.ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (AC) this.ctx = new AC();
    }
    if (this.ctx && this.ctx.state === 'suspended') this.ctx.resume();
  },
  beep(freq, start, len) {
    const o = this.ctx.createOscillator();
    const g = this.ctx.createGain();
    o.type = 'square';
    o.frequency.value = freq;
    g.gain.setValueAtTime(0.0001, start);
    g.gain.exponentialRampToValueAtTime(0.25, start + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, start + len);
    o.connect(g).connect(this.ctx.destination);
    o.start(start);
    o.stop(start + len + 0.05);
  },
  /* The temporal-three pattern that fire alarms use: three beeps, a pause. */
  pattern() {
    if (!this.ctx || state.muted) return;
    const now = this.ctx.currentTime;
    for (let i = 0; i < 3; i++) this.beep(880, now + i * 0.5, 0.35);
  },
  start() {
    if (this.timer) return;
    this.pattern();
    this.timer = setInterval(() => this.pattern(), 2500);
  },
  stop() {
    clearInterval(this.timer);
    this.timer = null;
  },
};

/* --- Sign in and out ------------------------------------------------------- */

function showLogin() {
  state.me = null;
  if (state.mode === 'regional') region.stop();
  stream.stop();
  sound.stop();
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-user').focus();
}

async function onLogin(ev) {
  ev.preventDefault();
  sound.unlock();
  const err = $('login-error');
  err.hidden = true;
  const r = await api('POST', '/session', { user: $('login-user').value, password: $('login-password').value });
  if (r.ok) {
    $('login-password').value = '';
    await startApp(r.data);
    return;
  }
  err.textContent = r.status === 401 ? t('login.wrong')
    : r.status === 429 ? t('login.throttled', { s: r.retry || '?' })
      : t('login.failed', { msg: (r.data && r.data.error) || r.status });
  err.hidden = false;
}

async function logout() {
  await api('DELETE', '/session');
  showLogin();
}

async function startApp(me) {
  state.me = me;
  state.csrf = me.csrf || '';
  $('login').hidden = true;
  $('app').hidden = false;
  $('whoami').textContent = me.user + ' · ' + t('role.' + me.role);
  $('tab-tech').hidden = me.role !== 'technician' && me.role !== 'admin';
  if (state.mode === 'regional') { await region.start(); return; }
  selectView(location.hash.replace('#', '') || state.view);
  await refresh();
  stream.start();
}

/* --- Data ------------------------------------------------------------------ */

/* A list route page by page (the API returns at most 1000 per page). */
async function getAll(path, key) {
  let items = [];
  let after = '';
  for (let page = 0; page < 100; page++) {
    const r = await api('GET', path + (after ? (path.includes('?') ? '&' : '?') + 'after=' + encodeURIComponent(after) : ''));
    if (!r.ok) return r;
    items = items.concat(r.data[key]);
    if (!r.data.next) break;
    after = r.data.next;
  }
  return { ok: true, data: { [key]: items } };
}

async function refresh() {
  const [sites, zones, hh, nodes, act, hist, rd, tr] = await Promise.all([
    api('GET', '/sites'), api('GET', '/zones'), getAll('/households', 'households'), getAll('/nodes', 'nodes'),
    api('GET', '/incidents?state=active&timeline=1'), api('GET', '/incidents?state=all&limit=20'),
    api('GET', '/readiness'), api('GET', '/troubles'),
  ]);
  if (!state.me) return;
  if (sites.ok) state.site = sites.data.sites[0] || null;
  if (zones.ok) state.zones = zones.data.zones;
  if (hh.ok) state.households = hh.data.households;
  if (nodes.ok) state.nodes = nodes.data.nodes;
  if (act.ok) {
    const rows = merge(act.data.incidents);
    /* The hub writes its database in batches (a fraction of a second), so an
     * incident the stream just announced may not be there yet: keep it. */
    for (const a of state.active) {
      const k = state.known.get(a.id);
      if (!rows.some((r) => r.id === a.id) && k && RANK[k.state] < 3 && Date.now() - k.at < 10000) rows.unshift(a);
    }
    state.active = rows.filter((i) => RANK[i.state] < 3);
  }
  if (hist.ok) state.history = merge(hist.data.incidents);
  if (rd.ok) state.readiness = rd.data.sites;
  if (tr.ok) state.troubles = tr.data.troubles;
  if (state.view === 'tech') loadTech();
  renderAll();
}

/* Many stream events can arrive together; refresh once for a burst. */
function refreshSoon() {
  clearTimeout(refreshSoon.timer);
  refreshSoon.timer = setTimeout(refresh, 150);
}

/* --- Live stream ------------------------------------------------------------ */

const stream = {
  es: null,
  start() {
    this.stop();
    const es = new EventSource(API + '/stream');
    this.es = es;
    setLive('connecting');
    es.onopen = () => { setLive('ok'); refreshSoon(); };
    es.onerror = () => setLive('lost');
    for (const type of ['incident', 'trouble', 'node', 'readiness', 'reset']) {
      es.addEventListener(type, (ev) => {
        setLive('ok');
        let data = null;
        try { data = JSON.parse(ev.data); } catch (e) { data = null; }
        if (type === 'incident' && data && data.id && RANK[data.state] !== undefined) {
          const f = { state: data.state };
          if (data.state === 'acknowledged') { f.acked_by = data.who || ''; f.acked_ms = data.ts || Date.now(); }
          learn(data.id, f);
          if (data.state === 'alarm') showAlarmNow(data);
          else { state.active = merge(state.active).filter((i) => RANK[i.state] < 3); renderBanner(); }
        }
        refreshSoon();
      });
    }
  },
  stop() {
    if (this.es) this.es.close();
    this.es = null;
  },
};

function setLive(s) {
  const el = $('live');
  el.dataset.state = s;
  el.textContent = t('live.' + s);
}

/* An escalation shows the moment it arrives, before the refresh completes. */
function showAlarmNow(inc) {
  if (!state.active.some((a) => a.id === inc.id)) {
    state.active.unshift({ id: inc.id, zone: inc.zone, state: 'alarm', kind: inc.kind || 'fire',
      origin: inc.origin || '', opened_ms: inc.ts || Date.now(), escalated_ms: inc.ts || Date.now(), nodes: [] });
  }
  renderBanner();
}

/* --- Rendering --------------------------------------------------------------- */

function zoneName(id) {
  const z = state.zones.find((x) => x.id === id);
  return z && z.name ? z.name : id;
}

function nodeWhere(nodeId) {
  const n = state.nodes.find((x) => x.id === nodeId);
  if (!n) return nodeId || '';
  const hh = state.households.find((x) => x.id === n.household);
  const room = n.room ? t('room.' + n.room) : '';
  return (hh ? hh.address : n.household) + (room && !room.startsWith('room.') ? ' · ' + room : (n.room ? ' · ' + n.room : ''));
}

function renderAll() {
  $('site-name').textContent = state.site ? state.site.name : '';
  renderBanner();
  renderLegend();
  renderZones();
  renderNodes();
  renderIncidents();
  renderReadiness();
  renderReport();
  if (state.chart.node) loadChart();
}

function renderBanner() {
  const box = $('banner');
  box.replaceChildren();
  let ringing = false;
  for (const inc of state.active) {
    if (inc.state === 'cleared' || inc.state === 'dismissed') continue;
    const drill = inc.kind === 'drill';
    const zone = zoneName(inc.zone);
    if (inc.state === 'verifying') {
      box.append(h('div', { class: 'alarm-item verifying', 'data-incident': inc.id },
        h('div', { class: 'alarm-text' }, h('strong', {}, t('banner.verifying', { zone })))));
      continue;
    }
    const acked = inc.state === 'acknowledged';
    if (!acked) ringing = true;
    const actions = h('div', { class: 'alarm-actions' },
      acked ? null : h('button', { class: 'btn', type: 'button', 'data-action': 'ack', onclick: () => act('acknowledge', inc.id) }, t('banner.ack')),
      acked ? h('button', { class: 'btn primary', type: 'button', 'data-action': 'clear', onclick: () => act('clear', inc.id) }, t('banner.clear')) : null,
      acked ? null : h('button', { class: 'btn ghost', type: 'button', onclick: toggleMute }, state.muted ? t('banner.unmute') : t('banner.mute')));
    const lines = [h('strong', {}, t(drill ? 'banner.drill_in' : 'banner.fire_in', { zone }))];
    if (inc.origin) {
      lines.push(h('div', {}, t('banner.origin', { where: nodeWhere(inc.origin) })));
      const n = state.nodes.find((x) => x.id === inc.origin);
      const hh = n && state.households.find((x) => x.id === n.household);
      if (hh && (hh.contact || hh.phone)) {
        lines.push(h('div', {}, t('banner.contact', { name: hh.contact }), ' ',
          hh.phone ? h('a', { class: 'tel', href: 'tel:' + hh.phone.replace(/[^0-9+]/g, '') }, hh.phone) : null));
      }
    }
    lines.push(h('div', {}, acked ? t('banner.acked', { who: inc.acked_by || '', time: fmtTime(inc.acked_ms) })
      : t('banner.since', { time: fmtTime(inc.escalated_ms || inc.opened_ms) })));
    box.append(h('div', { class: 'alarm-item' + (acked ? ' acked' : ' flash') + (drill && !acked ? ' drill' : ''), 'data-incident': inc.id, 'data-state': inc.state, role: 'alert' },
      h('span', { class: 'alarm-word' }, t(drill ? 'banner.drill' : 'banner.fire')),
      h('div', { class: 'alarm-text' }, lines), actions));
  }
  box.hidden = box.childElementCount === 0;
  if (ringing) sound.start(); else sound.stop();
}

function toggleMute() {
  state.muted = !state.muted;
  renderBanner();
}

async function act(what, id) {
  const r = await api('POST', '/incidents/' + id + '/' + what);
  if (r.ok) {
    learn(id, what === 'clear' ? { state: 'cleared' } : { state: 'acknowledged', acked_by: state.me.user, acked_ms: Date.now() });
    toast(t(what === 'clear' ? 'toast.cleared' : 'toast.acked'));
  } else {
    toast(t('toast.error', { msg: (r.data && r.data.error) || r.status }));
  }
  await refresh();
}

async function drill(zone) {
  if (!window.confirm(t('zone.drill_confirm', { zone: zoneName(zone) }))) return;
  sound.unlock();
  const r = await api('POST', '/zones/' + encodeURIComponent(zone) + '/drill');
  if (r.ok) toast(t('toast.drill'));
  else toast(t('toast.error', { msg: (r.data && r.data.error) || r.status }));
  await refresh();
}

function renderLegend() {
  const items = [['ok', '#2e7d4f'], ['trouble', '#9a6200'], ['verifying', '#d35400'], ['alarm', '#c62828'], ['no_detector', '#9ca3af']];
  $('legend').replaceChildren(...items.map(([k, c]) => h('span', {}, h('i', { style: { background: c } }), t('state.' + k))));
}

function zoneReadiness(id) {
  for (const s of state.readiness) for (const z of s.zones) if (z.id === id) return z;
  return null;
}

function renderZones() {
  const box = $('zones');
  box.replaceChildren();
  for (const z of state.zones) {
    const houses = state.households.filter((x) => x.zone === z.id);
    const rd = zoneReadiness(z.id);
    const alarm = z.incident_state === 'alarm';
    box.append(h('article', { class: 'card zone' + (alarm ? ' alarm' : ''), 'data-zone': z.id },
      h('div', { class: 'zone-head' },
        h('h2', {}, z.name || z.id),
        z.incident_state ? h('span', { class: 'chip ' + z.incident_state }, t('state.' + z.incident_state))
          : rd ? h('span', { class: 'chip ' + rd.level }, t('zone.readiness', { score: rd.score })) : null),
      h('div', { class: 'zone-meta' }, t('zone.households', { n: z.households }), ' · ', t('zone.nodes', { n: z.nodes }),
        z.neighbours.length ? ' · ' + t('zone.neighbours', { list: z.neighbours.map(zoneName).join(', ') }) : ''),
      h('div', { class: 'houses' }, houses.map((hh) => h('div', {
        class: 'house ' + hh.state, 'data-household': hh.id,
        title: hh.address + ' · ' + hh.contact + ' · ' + hh.phone + (hh.troubles.length ? ' · ' + hh.troubles.map((k) => t('trouble.' + k)).join(', ') : ''),
      }, h('b', {}, hh.address), h('small', {}, hh.state === 'ok' ? hh.contact : t('state.' + hh.state))))),
      h('div', { class: 'zone-foot' },
        h('small', {}, z.id),
        h('button', { class: 'btn small', type: 'button', onclick: () => drill(z.id) }, t('zone.drill')))));
  }
}

function renderNodes() {
  const body = $('nodes-table').tBodies[0];
  body.replaceChildren();
  for (const n of state.nodes) {
    const batt = n.batt_pct;
    const temp = n.last_reading ? n.last_reading.temp_c.toFixed(1) + ' °C' : '–';
    body.append(h('tr', { class: state.chart.node === n.id ? 'selected' : '', 'data-node': n.id },
      h('td', {}, h('b', {}, n.id), h('br'), h('small', {}, t('kind.' + n.kind))),
      h('td', {}, nodeWhere(n.id), h('br'), h('small', {}, zoneName(n.zone))),
      h('td', {}, h('span', { class: 'chip ' + n.health }, t('health.' + n.health)),
        n.troubles.length ? h('div', {}, h('small', {}, n.troubles.map((k) => t('trouble.' + k)).join(', '))) : null),
      h('td', {}, batt === null ? '–' : h('span', { class: 'batt' + (batt < 20 ? ' low' : '') }, h('i', { style: { '--pct': batt + '%' } }), batt + ' %')),
      h('td', {}, temp),
      h('td', {}, fmtAgo(n.last_seen_ms)),
      h('td', {}, fmtAgo(n.last_test_ms)),
      h('td', {}, h('button', { class: 'btn small', type: 'button', onclick: () => openChart(n.id) }, t('nodes.chart')))));
  }
  const list = $('troubles');
  list.replaceChildren(...(state.troubles.length ? state.troubles.map((tr) => h('li', {},
    h('span', { class: 'chip trouble' }, t('trouble.' + tr.kind)), ' ',
    t('troubles.item', { node: tr.node, where: nodeWhere(tr.node), kind: t('trouble.' + tr.kind), time: fmtAgo(tr.opened_ms) })))
    : [h('li', { class: 'muted' }, t('troubles.none'))]));
}

function incidentCard(inc, withTimeline) {
  const kind = t(inc.kind === 'drill' ? 'incidents.drill' : 'incidents.fire');
  const start = inc.kind === 'fire' && inc.escalated_ms ? inc.escalated_ms : inc.opened_ms;
  const parts = [t('incidents.opened', { time: fmtTime(inc.opened_ms) })];
  if (inc.acked_ms) parts.push(t('incidents.response', { d: fmtDur(inc.acked_ms - start) }) + ' ' + t('incidents.by', { who: inc.acked_by }));
  const tl = inc.timeline ? h('ol', { class: 'timeline' }, inc.timeline.map((e) => h('li', {},
    h('time', {}, fmtTime(e.ts_ms)), t('timeline.' + e.what).startsWith('timeline.') ? e.what : t('timeline.' + e.what),
    e.who ? ' · ' + e.who : ''))) : null;
  return h('div', { class: 'incident', 'data-incident': inc.id },
    h('div', { class: 'incident-head' },
      h('strong', {}, t('incidents.row', { id: inc.id, kind, zone: zoneName(inc.zone) })),
      h('span', { class: 'chip ' + inc.state }, t('state.' + inc.state))),
    h('small', {}, parts.join(' · ')),
    tl && withTimeline ? tl : null);
}

function renderIncidents() {
  const act = $('incidents-active');
  act.replaceChildren(...(state.active.length ? state.active.map((i) => incidentCard(i, true)) : [h('p', { class: 'muted' }, t('incidents.none'))]));
  const hist = $('incidents-history');
  hist.replaceChildren(...(state.history.length ? state.history.map((i) => incidentCard(i, false)) : [h('p', { class: 'muted' }, t('incidents.none_history'))]));
}

/* Reasons in the reader's language, from the same counts the score uses. */
function reasons(z) {
  const c = z.counts;
  const out = [];
  if (c.households > c.covered) out.push(t('reason.uncovered', { n: c.households - c.covered, total: c.households }));
  if (c.offline) out.push(t('reason.offline', { n: c.offline }));
  if (c.battery_low) out.push(t('reason.battery', { n: c.battery_low }));
  if (c.troubled) out.push(t('reason.troubled', { n: c.troubled }));
  const commissioned = c.nodes - c.uncommissioned;
  if (commissioned > c.tested) out.push(t('reason.untested', { n: commissioned - c.tested }));
  if (c.uncommissioned) out.push(t('reason.uncommissioned', { n: c.uncommissioned }));
  if (z.median_response_ms === null) out.push(t('reason.no_response'));
  else if (z.median_response_ms > 120000) out.push(t('reason.slow_response', { d: fmtDur(z.median_response_ms) }));
  return out;
}

function renderReadiness() {
  const box = $('readiness');
  box.replaceChildren();
  for (const s of state.readiness) {
    box.append(h('div', { class: 'card rd-site', 'data-site': s.id },
      h('div', { class: 'score ' + s.level }, s.score),
      h('div', {}, h('h2', {}, t('readiness.site') + ' · ' + (s.name || s.id)),
        h('span', { class: 'chip ' + s.level }, t('readiness.level.' + s.level)), ' ',
        h('small', {}, t('zone.households', { n: s.households })))));
    const grid = h('div', { class: 'rd-zones' });
    for (const z of s.zones) {
      const bars = [['coverage', 40], ['health', 30], ['tested', 20], ['response', 10]].map(([k, max]) =>
        h('div', { class: 'bar' }, h('span', {}, t('readiness.' + k)),
          h('div', { class: 'track' }, h('div', { class: 'fill', style: { '--w': Math.round(100 * z.points[k] / max) + '%' } })),
          h('span', {}, Math.round(z.points[k]) + '/' + max)));
      const rs = reasons(z);
      grid.append(h('article', { class: 'card rd-zone', 'data-zone': z.id },
        h('div', { class: 'rd-top' }, h('div', { class: 'score ' + z.level }, z.score),
          h('div', {}, h('h2', {}, z.name || z.id), h('span', { class: 'chip ' + z.level }, t('readiness.level.' + z.level)))),
        h('div', { class: 'bars' }, bars),
        rs.length ? h('ul', { class: 'reasons' }, rs.map((r) => h('li', {}, r))) : h('p', { class: 'muted' }, t('readiness.perfect'))));
    }
    box.append(grid);
  }
}

function renderReport() {
  const input = $('report-month');
  if (!input.value) {
    const d = new Date();
    input.value = d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0');
  }
  const site = state.site ? state.site.id : '';
  const q = '?site=' + encodeURIComponent(site) + '&month=' + encodeURIComponent(input.value);
  $('report-html').href = API + '/reports/monthly' + q;
  $('report-csv').href = API + '/reports/monthly' + q + '&format=csv';
}

/* --- Chart: a small canvas line chart, written here to stay dependency-free. */

function openChart(id) {
  state.chart.node = id;
  $('chart-card').hidden = false;
  renderNodes();
  loadChart();
  $('chart-card').scrollIntoView({ behavior: 'smooth', block: 'start' });
}

async function loadChart() {
  const id = state.chart.node;
  const to = Date.now();
  const r = await api('GET', '/nodes/' + encodeURIComponent(id) + '/readings?from=' + (to - state.chart.span) + '&to=' + to);
  $('chart-title').textContent = t('chart.title', { node: id, where: nodeWhere(id) });
  for (const b of document.querySelectorAll('#chart-range button')) b.setAttribute('aria-pressed', String(Number(b.dataset.span) === state.chart.span));
  if (!r.ok) return;
  drawChart(r.data, to - state.chart.span, to);
  $('chart-note').textContent = r.data.t.length ? t('chart.resolution.' + r.data.resolution) : t('chart.none');
}

function drawChart(d, from, to) {
  const cv = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth || 600;
  const hgt = cv.clientHeight || 260;
  cv.width = Math.round(w * dpr);
  cv.height = Math.round(hgt * dpr);
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, hgt);
  const pad = { l: 42, r: 12, t: 12, b: 34 };
  const pw = w - pad.l - pad.r;
  const ph = hgt - pad.t - pad.b;
  const lo = d.temp_min || d.temp_c;
  const hi = d.temp_max || d.temp_c;
  let ymin = Math.min(...lo, 20);
  let ymax = Math.max(...hi, 30);
  ymin = Math.floor(ymin / 5) * 5;
  ymax = Math.ceil(ymax / 5) * 5;
  const x = (ms) => pad.l + ((ms - from) / (to - from)) * pw;
  const y = (v) => pad.t + ph - ((v - ymin) / (ymax - ymin)) * ph;
  g.font = '12px system-ui, sans-serif';
  g.fillStyle = '#5f6b7a';
  g.strokeStyle = '#e5e8ec';
  g.lineWidth = 1;
  for (let v = ymin; v <= ymax; v += 5) {
    g.beginPath(); g.moveTo(pad.l, y(v)); g.lineTo(w - pad.r, y(v)); g.stroke();
    g.fillText(v + '°', 6, y(v) + 4);
  }
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const ms = from + ((to - from) * i) / ticks;
    const dt = new Date(ms);
    const label = to - from > 86400000 * 3 ? dt.getDate() + '/' + (dt.getMonth() + 1)
      : String(dt.getHours()).padStart(2, '0') + ':' + String(dt.getMinutes()).padStart(2, '0');
    const tx = x(ms);
    g.fillText(label, Math.min(Math.max(tx - 14, pad.l - 10), w - 40), hgt - 12);
  }
  if (!d.t.length) return;
  if (d.temp_min && d.temp_max) {
    g.fillStyle = 'rgba(47, 102, 144, .15)';
    g.beginPath();
    d.t.forEach((ms, i) => { if (i === 0) g.moveTo(x(ms), y(d.temp_max[i])); else g.lineTo(x(ms), y(d.temp_max[i])); });
    for (let i = d.t.length - 1; i >= 0; i--) g.lineTo(x(d.t[i]), y(d.temp_min[i]));
    g.closePath();
    g.fill();
  }
  g.strokeStyle = '#2f6690';
  g.lineWidth = 2;
  g.beginPath();
  d.t.forEach((ms, i) => { if (i === 0) g.moveTo(x(ms), y(d.temp_c[i])); else g.lineTo(x(ms), y(d.temp_c[i])); });
  g.stroke();
  /* Smoke: a red mark along the bottom wherever a reading saw smoke. */
  g.fillStyle = '#c62828';
  d.t.forEach((ms, i) => { if (d.smoke[i]) g.fillRect(x(ms) - 1, pad.t + ph - 6, 3, 6); });
}

/* --- Technician ------------------------------------------------------------- */

/* GET /api/v1/tech: problems by household, each with what to do. The
 * advice is translated by problem kind; the API's English is the fallback. */
async function loadTech() {
  const r = await api('GET', '/tech');
  if (!r.ok || !Array.isArray(r.data)) return;
  const box = $('tech');
  if (!r.data.length) {
    box.replaceChildren(h('p', { class: 'muted' }, t('tech.none')));
    return;
  }
  box.replaceChildren(...r.data.map((hh) => h('div', { class: 'tech-household', 'data-household': hh.household },
    h('h3', {}, t('tech.household', { id: hh.household }), ' · ', zoneName(hh.zone)),
    h('small', {}, [hh.address, hh.contact, hh.phone].filter((s) => s).join(' · ')),
    h('ul', { class: 'plain' }, ...hh.problems.map((p) => {
      const doKey = 'tech.do.' + p.problem;
      return h('li', { 'data-node': p.node, 'data-problem': p.problem },
        h('b', {}, p.node), ' ', h('span', { class: 'chip trouble' }, t('tech.kind.' + p.problem)), ' ',
        h('small', {}, t('tech.since', { time: fmtAgo(p.since_ms) }), p.detail ? ' · ' + p.detail : ''),
        p.problem === 'still_publishing' ? null
          : h('button', { class: 'btn small', type: 'button', style: { 'margin-left': '0.5em' }, onclick: () => testNode(p.node) }, t('tech.test')),
        h('div', {}, h('small', {}, state.strings[doKey] ? t(doKey) : p.action)));
    })))));
}

/* POST /api/v1/nodes/<id>/test, then poll its outcome (the hub answers when
 * the node's test event comes or the timeout passes). */
async function testNode(node) {
  const r = await api('POST', '/nodes/' + encodeURIComponent(node) + '/test', {});
  if (r.status !== 202) {
    toast(t('tech.refused', { node, msg: (r.data && r.data.error) || r.status }));
    return;
  }
  toast(t('tech.testing', { node }));
  const deadline = Date.now() + (r.data.timeout_s + 10) * 1000;
  while (Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 1000));
    const l = await api('GET', '/nodes/' + encodeURIComponent(node) + '/tests');
    const last = l.ok && Array.isArray(l.data) ? l.data.find((x) => x.test === r.data.test) : null;
    if (last && last.state !== 'running') {
      toast(t(last.state === 'pass' ? 'tech.pass' : 'tech.fail', { node, reason: last.reason }));
      refreshSoon();
      return;
    }
  }
}

/* --- Views and start-up ---------------------------------------------------- */

function selectView(v) {
  if (!['area', 'nodes', 'incidents', 'readiness', 'report', 'tech'].includes(v)) v = 'area';
  if (v === 'tech' && $('tab-tech').hidden) v = 'area';
  state.view = v;
  for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.view === v));
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + v;
  if (location.hash !== '#' + v) history.replaceState(null, '', '#' + v);
  if (v === 'nodes' && state.chart.node) loadChart();
  if (v === 'tech') loadTech();
}

async function main() {
  let lang = localStorage.getItem('fw_lang');
  let health = null;
  try { health = await (await fetch(API + '/health')).json(); } catch (e) { health = null; }
  if (lang !== 'vi' && lang !== 'en') lang = health && health.lang === 'vi' ? 'vi' : 'en';
  if (health && health.mode === 'regional') state.mode = 'regional';
  await loadLang(lang);
  $('login-form').addEventListener('submit', onLogin);
  for (const b of document.querySelectorAll('[data-lang]')) b.addEventListener('click', () => switchLang(b.dataset.lang));
  $('lang-toggle').addEventListener('click', () => switchLang(state.lang === 'vi' ? 'en' : 'vi'));
  $('logout').addEventListener('click', logout);
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => selectView(b.dataset.view));
  for (const b of document.querySelectorAll('#chart-range button')) b.addEventListener('click', () => { state.chart.span = Number(b.dataset.span); loadChart(); });
  $('chart-close').addEventListener('click', () => { state.chart.node = null; $('chart-card').hidden = true; renderNodes(); });
  $('report-month').addEventListener('change', renderReport);
  document.addEventListener('click', () => sound.unlock(), { passive: true });
  window.addEventListener('resize', () => { if (state.chart.node) loadChart(); });
  setInterval(() => { if (state.me && state.mode !== 'regional') refresh(); }, 30000);
  const me = await api('GET', '/session');
  if (me.ok) await startApp(me.data);
  else showLogin();
}

main();
