/*
 * region.js - the regional view of the dashboard (hub.conf mode regional):
 * a read-only picture of many area hubs, from what they forward over the
 * federation bridge (docs/federation.md). It shows an alarm banner for the
 * fires in alarm anywhere, one card per area (readiness, size, open
 * incidents, the bridge and whether the area is still being heard), the
 * incidents across areas with a link to each CAP alert, and totals. There
 * are no incident actions here: a regional hub is a view, and the area's own
 * hub is where people act.
 *
 * It uses app.js's helpers (api, t, h, $, fmtTime, fmtAgo, state) and its
 * sign-in, session and language handling; app.js calls region.start() after
 * sign-in when /api/v1/health says mode "regional", region.render() when
 * the language changes and region.stop() on sign-out. The regional hub has
 * no live stream, so it polls every REFRESH_MS. Loaded before app.js, it
 * only defines things: nothing here runs until app.js calls it.
 */
'use strict';

const region = {
  REFRESH_MS: 5000,
  data: null,      /* the last GET /api/v1/region */
  incidents: [],   /* the last GET /api/v1/region/incidents */
  updated: 0,      /* when both last arrived (browser time) */
  error: '',       /* why the last refresh failed, '' when it did not */
  timer: null,
  running: false,
  bannerKey: '',   /* what the banner shows, so it is only redrawn (and re-announced) on change */

  async start() {
    this.running = true;
    document.body.dataset.mode = 'regional';
    $('view-region').hidden = false;
    await this.refresh();
  },

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    this.data = null;
    this.incidents = [];
    this.bannerKey = '';
  },

  /* Reads both routes, draws, and schedules the next read. A failed read
   * keeps the last picture on screen and says how old it is. */
  async refresh() {
    clearTimeout(this.timer);
    const [r, inc] = await Promise.all([api('GET', '/region'), api('GET', '/region/incidents?limit=100')]);
    if (!this.running || !state.me) return;
    if (r.ok && inc.ok) {
      this.data = r.data;
      this.incidents = inc.data.incidents || [];
      this.updated = Date.now();
      this.error = '';
    } else {
      const bad = r.ok ? inc : r;
      this.error = (bad.data && bad.data.error) || String(bad.status);
    }
    this.render();
    this.timer = setTimeout(() => this.refresh(), this.REFRESH_MS);
  },

  render() {
    if (!this.running) return;
    $('site-name').textContent = t('region.site');
    const upd = $('region-updated');
    upd.textContent = this.error
      ? t('region.failed', { msg: this.error, time: this.updated ? fmtClock(this.updated) : '–' })
      : this.updated ? t('region.updated', { time: fmtClock(this.updated), s: this.REFRESH_MS / 1000 }) : '';
    upd.classList.toggle('region-error', !!this.error);
    if (!this.data) return;
    this.renderBanner();
    this.renderTotals();
    this.renderAreas();
    this.renderIncidents();
  },

  /* The area's display name: the regional operator's, else its hub's. */
  areaName(id) {
    const a = this.data && this.data.areas.find((x) => x.id === id);
    return a ? a.name : id;
  },

  /* Fires in alarm or acknowledged, anywhere: what a coordinator must see. */
  alarms() {
    return this.incidents.filter((i) => i.open && i.kind === 'fire' && (i.state === 'alarm' || i.state === 'acknowledged'));
  },

  renderBanner() {
    const list = this.alarms();
    const key = state.lang + '|' + list.map((i) => i.area + '/' + i.id + '/' + i.state).join(',');
    if (key === this.bannerKey) return;
    this.bannerKey = key;
    const box = $('region-banner');
    if (!list.length) {
      box.replaceChildren();
      box.hidden = true;
      return;
    }
    const areas = [...new Set(list.map((i) => i.area))];
    box.replaceChildren(h('div', { class: 'alarm-item region-alarm' + (list.some((i) => i.state === 'alarm') ? '' : ' acked') },
      h('span', { class: 'alarm-word' }, t('banner.fire')),
      h('div', { class: 'alarm-text' },
        h('h2', {}, t('region.banner', { n: areas.length, list: areas.map((a) => this.areaName(a)).join(', ') })),
        h('ul', { class: 'plain region-alarm-list' }, list.map((i) => h('li', { 'data-area': i.area, 'data-incident': i.id, 'data-state': i.state },
          h('strong', {}, this.areaName(i.area)), ' · ', i.zone_name || i.zone, ' · ',
          h('span', { class: 'chip ' + i.state }, t('state.' + i.state)), ' · ',
          i.state === 'acknowledged'
            ? t('region.acked', { who: i.ack_by || '?', time: fmtTime(i.ack_ms) })
            : t('banner.since', { time: fmtTime(i.alarm_ms || i.opened_ms) }) + ' (' + fmtAgo(i.alarm_ms || i.opened_ms) + ')'))),
        h('p', {}, t('region.banner_help')))));
    box.hidden = false;
  },

  renderTotals() {
    const tt = this.data.totals;
    const item = (key, n, cls) => h('div', { class: 'total' + (cls ? ' ' + cls : ''), 'data-total': key },
      h('dt', {}, t('region.total.' + key)), h('dd', {}, String(n)));
    $('region-totals').replaceChildren(
      item('areas', tt.areas),
      item('households', tt.households),
      item('nodes', tt.nodes),
      item('open_incidents', tt.open_incidents),
      item('alarms', tt.alarms, tt.alarms ? 'alarm' : ''),
      item('stale', this.data.areas.filter((a) => a.stale).length, this.data.areas.some((a) => a.stale) ? 'warn' : ''));
  },

  /* Areas in alarm first, then stale ones, then the least ready. */
  sortedAreas() {
    const score = (a) => (a.readiness ? a.readiness.score : a.hub ? a.hub.score : -1);
    return [...this.data.areas].sort((a, b) => (b.alarms > 0) - (a.alarms > 0) || (b.stale - a.stale) ||
      score(a) - score(b) || a.name.localeCompare(b.name));
  },

  renderAreas() {
    const box = $('region-areas');
    if (!this.data.areas.length) {
      box.replaceChildren(h('p', { class: 'muted' }, t('region.no_areas')));
      return;
    }
    box.replaceChildren(...this.sortedAreas().map((a) => this.areaCard(a)));
  },

  areaCard(a) {
    const rd = a.readiness;
    const hub = a.hub;
    const score = rd ? rd.score : hub ? hub.score : null;
    const level = rd ? rd.level : score === null ? 'unknown' : score >= 90 ? 'ready' : score >= 70 ? 'attention' : 'not_ready';
    const now = this.data.now;
    const head = h('div', { class: 'area-head' },
      h('h3', { id: 'area-' + a.id }, a.name),
      a.alarms ? h('span', { class: 'chip alarm' }, t('region.alarms', { n: a.alarms })) : null);
    const scoreBox = h('div', { class: 'area-score' },
      h('div', { class: 'score ' + level, 'aria-label': t('region.score_label', { score: score === null ? '–' : score }) },
        score === null ? '–' : String(score)),
      h('div', {},
        h('span', { class: 'chip ' + level, 'data-level': level }, level === 'unknown' ? t('region.no_report') : t('readiness.level.' + level)),
        h('div', { class: 'area-meta' },
          hub ? t('zone.households', { n: hub.households }) + ' · ' + t('zone.nodes', { n: hub.nodes }) : t('region.no_report'),
          h('br'),
          t(a.open_incidents ? 'region.open' : 'region.open_none', { n: a.open_incidents }))));
    const bridge = h('p', { class: 'area-bridge' },
      h('span', { class: 'chip bridge-' + a.bridge, 'data-bridge': a.bridge }, t('region.bridge.' + a.bridge)), ' ',
      h('small', {}, a.bridge_ms ? t('region.bridge_since', { time: fmtAgo(a.bridge_ms) }) : ''));
    const staleMin = Math.max(1, Math.round((now - a.last_seen_ms) / 60000));
    const stale = a.stale
      ? h('p', { class: 'stale-warning', role: 'note', 'data-stale-min': a.last_seen_ms ? staleMin : '' },
        h('strong', {}, t('region.stale')), ' — ',
        a.last_seen_ms ? t('region.stale_for', { n: staleMin }) : t('region.never_heard'))
      : h('p', { class: 'area-seen' }, h('small', {}, t('region.heard', { time: fmtAgo(a.last_seen_ms) })));
    const reasons = this.topReasons(rd);
    const why = reasons.length
      ? h('div', { class: 'area-reasons' }, h('h4', {}, t('region.worst_zones')),
        h('ul', { class: 'reasons' }, reasons.map((r) => h('li', {}, h('b', {}, r.zone), ' (' + r.score + '): ', r.text))))
      : rd ? h('p', { class: 'muted' }, t('readiness.perfect')) : null;
    const url = hub && safeUrl(hub.public_url);
    return h('article', {
      class: 'card area-card' + (a.alarms ? ' alarm' : '') + (a.stale ? ' stale' : ''),
      'data-area': a.id, 'data-level': level, 'data-bridge': a.bridge, 'data-stale': String(a.stale),
      'aria-labelledby': 'area-' + a.id,
    }, head, scoreBox, bridge, stale, why,
    h('div', { class: 'area-foot' }, h('small', {}, a.id + (hub && hub.version ? ' · v' + hub.version : '')),
      url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, t('region.open_hub')) : null));
  },

  /* The reasons of the area's worst zones (those under 100), worst first:
   * at most 3 zones, 2 reasons each, in the reader's language. */
  topReasons(rd) {
    if (!rd || !Array.isArray(rd.zones)) return [];
    const out = [];
    const zones = rd.zones.filter((z) => z.score < 100 && Array.isArray(z.reasons) && z.reasons.length)
      .sort((a, b) => a.score - b.score).slice(0, 3);
    for (const z of zones) for (const r of z.reasons.slice(0, 2)) out.push({ zone: z.id, score: z.score, text: translateReason(r) });
    return out;
  },

  renderIncidents() {
    const body = $('region-incidents').tBodies[0];
    if (!this.incidents.length) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: '7', class: 'muted' }, t('incidents.none_history'))));
      return;
    }
    const col = (key, ...c) => h('td', { 'data-label': t(key) }, ...c);
    body.replaceChildren(...this.incidents.map((i) => {
      const area = this.areaName(i.area);
      const kind = t(i.kind === 'drill' ? 'incidents.drill' : 'incidents.fire');
      const when = i.ack_ms ? t('region.acked', { who: i.ack_by || '?', time: fmtTime(i.ack_ms) })
        : i.closed_ms ? t('region.closed', { time: fmtTime(i.closed_ms) }) : '';
      return h('tr', { class: i.open ? 'open' : 'closed', 'data-area': i.area, 'data-incident': i.id, 'data-state': i.state },
        h('th', { scope: 'row', 'data-label': t('region.col.area') }, area),
        col('region.col.zone', i.zone_name || i.zone, h('br'), h('small', {}, '#' + i.id + ' · ' + i.zone)),
        col('region.col.kind', kind, i.cause ? h('br') : null, i.cause ? h('small', {}, t('region.cause.' + i.cause).startsWith('region.') ? i.cause : t('region.cause.' + i.cause)) : null),
        col('region.col.state', h('span', { class: 'chip ' + i.state }, t('state.' + i.state))),
        col('region.col.opened', fmtTime(i.opened_ms)),
        col('region.col.response', when || '–'),
        col('region.col.cap', i.cap
          ? h('a', { href: i.cap, type: 'application/cap+xml', 'data-cap': '', target: '_blank', rel: 'noopener',
            'aria-label': t('region.cap_label', { id: i.id, area }) }, t('region.cap'))
          : h('span', { class: 'muted' }, '–')));
    }));
  },
};

/* hh:mm:ss in the reader's language. */
function fmtClock(ms) {
  return new Date(ms).toLocaleTimeString(state.lang === 'vi' ? 'vi-VN' : 'en-GB');
}

/* An area's public_url, shown as a link only when it is http(s): the
 * document comes from another hub and a javascript: URL must not pass. */
function safeUrl(u) {
  if (typeof u !== 'string' || !u) return null;
  try {
    const url = new URL(u);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch (e) {
    return null;
  }
}

/* The readiness reasons come in English sentences from each area's hub
 * (hub/readiness.c); this table reads them back into the reader's
 * language. A sentence it does not know is shown as it came. */
const REASONS = [
  [/^(\d+) of (\d+) households? (?:has|have) no healthy detector$/, 'region.reason.uncovered'],
  [/^(\d+) of (\d+) detectors? (?:is|are) not commissioned$/, 'region.reason.uncommissioned'],
  [/^(\d+) of (\d+) detectors? (?:is|are) offline$/, 'region.reason.offline'],
  [/^(\d+) of (\d+) detectors? (?:has|have) a low battery$/, 'region.reason.battery'],
  [/^(\d+) of (\d+) detectors? (?:has|have) a fault or tamper trouble$/, 'region.reason.troubled'],
  [/^(\d+) of (\d+) detectors? (?:has|have) no passed test in the last 30 days$/, 'region.reason.untested'],
  [/^median response time is (\d+) min (\d+) s; full marks need under 2 minutes$/, 'region.reason.slow_response'],
  [/^no incident or drill yet to measure response time: run a drill$/, 'reason.no_response'],
  [/^the zone has no households$/, 'region.reason.no_households'],
  [/^the zone has no detectors$/, 'region.reason.no_nodes'],
];

function translateReason(text) {
  for (const [re, key] of REASONS) {
    const m = re.exec(text);
    if (m && state.strings[key] !== undefined) return t(key, { n: m[1], total: m[2], m: m[1], s: m[2] });
  }
  return text;
}
