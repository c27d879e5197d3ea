// clusterd operator console: a single-page app over the read-only JSON API
// (docs/console-api.md). Plain ES2020, no dependencies, no build step.
//
// Safety rule for this file: every value that comes from the API is
// attacker-controlled. The DOM is built with createElement/createElementNS
// and text nodes only; data never reaches innerHTML, never reaches an event
// handler attribute, and reaches URLs only through encodeURIComponent.
'use strict';

(() => {
  const SVGNS = 'http://www.w3.org/2000/svg';

  // ---------------------------------------------------------------- vocab

  // UKC phases in kill-chain order (SPEC §8), each with a fixed colour.
  const PHASES = [
    ['reconnaissance', '#8da0cb'], ['resource_development', '#a6bddb'],
    ['weaponization', '#7570b3'], ['delivery', '#5e3c99'],
    ['social_engineering', '#b2abd2'], ['exploitation', '#e7298a'],
    ['persistence', '#d95f02'], ['defense_evasion', '#a6761d'],
    ['command_and_control', '#e6ab02'], ['pivoting', '#66a61e'],
    ['discovery', '#1b9e77'], ['privilege_escalation', '#4daf4a'],
    ['execution', '#377eb8'], ['credential_access', '#984ea3'],
    ['lateral_movement', '#17becf'], ['collection', '#ff7f00'],
    ['exfiltration', '#e41a1c'], ['impact', '#a50f15'], ['objectives', '#525252'],
  ];
  const PHASE_COLOUR = new Map(PHASES);
  const PHASE_ORDER = new Map(PHASES.map(([p], i) => [p, i]));
  const UNKNOWN_PHASE = '#b8b8b8';

  // Campaign-level signals (SPEC §8), their labels and colours.
  const SIGNALS = [
    ['handoff', 'hand-off', '#d95f02'],
    ['infrastructure', 'shared infrastructure', '#1f6fd1'],
    ['rhythm', 'keystroke rhythm', '#7b3294'],
    ['planted_key', 'planted key', '#c51b7d'],
    ['overlap', 'overlap', '#3f8f29'],
    ['cohort', 'cohort', '#8a8a8a'],
  ];
  const SIGNAL_LABEL = new Map(SIGNALS.map(([k, l]) => [k, l]));
  const SIGNAL_COLOUR = new Map(SIGNALS.map(([k, , c]) => [k, c]));
  const signalLabel = (s) => SIGNAL_LABEL.get(s) || vis(s);
  const signalColour = (s) => SIGNAL_COLOUR.get(s) || '#666';

  // ------------------------------------------------------------ formatting

  // Control, bidi-override and zero-width characters are shown as \uXXXX so
  // an attacker cannot hide or reorder what the operator reads.
  const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
  function vis(value) {
    if (value === null || value === undefined) return '';
    return String(value).replace(INVISIBLE,
      (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  }
  function clip(value, max) {
    const s = vis(value);
    const chars = Array.from(s);
    return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : s;
  }
  // A value shown clipped, the whole of it in the tooltip.
  function val(value, max = 64, cls = 'val') {
    if (value === null || value === undefined || value === '') return h('span', { class: 'none' }, '–');
    const full = vis(value);
    const shown = clip(value, max);
    return h('span', { class: cls, title: shown === full ? null : full }, shown);
  }
  const code = (value, max = 64) => val(value, max, 'val mono');

  function parseTime(t) {
    if (t === null || t === undefined || t === '') return null;
    const d = typeof t === 'number' ? new Date(t > 1e12 ? t : t * 1000) : new Date(String(t));
    return Number.isNaN(d.getTime()) ? null : d;
  }
  function iso(t) {
    const d = parseTime(t);
    if (!d) return t === null || t === undefined ? '–' : clip(t, 40);
    return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  const timeCell = (t) => h('time', { datetime: parseTime(t) ? iso(t) : null, class: 'ts' }, iso(t));
  function num(n, digits = 2) {
    if (n === null || n === undefined || n === '') return '–';
    const x = Number(n);
    if (!Number.isFinite(x)) return clip(n, 20);
    if (Number.isInteger(x)) return x.toLocaleString('en-US');
    return x.toFixed(digits);
  }
  // Weights and confidences: always two decimals, so 1 and 0.95 line up.
  function wt(n) {
    const x = Number(n);
    return n === null || n === undefined || !Number.isFinite(x) ? '–' : x.toFixed(2);
  }
  function duration(a, b) {
    const s = parseTime(a), e = parseTime(b);
    if (!s || !e) return '–';
    let sec = Math.max(0, Math.round((e - s) / 1000));
    const d = Math.floor(sec / 86400); sec -= d * 86400;
    const hh = Math.floor(sec / 3600); sec -= hh * 3600;
    const mm = Math.floor(sec / 60); sec -= mm * 60;
    if (d) return `${d}d ${hh}h`;
    if (hh) return `${hh}h ${mm}m`;
    if (mm) return `${mm}m ${sec}s`;
    return `${sec}s`;
  }
  const short = (uuid) => clip(uuid, 9);
  const plural = (n, one, many) => `${num(n)} ${Number(n) === 1 ? one : (many || one + 's')}`;
  const list = (x) => (Array.isArray(x) ? x : []);

  // ------------------------------------------------------------------ DOM

  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  function setProps(el, props) {
    if (!props) return;
    for (const [k, v] of Object.entries(props)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.setAttribute('class', v);
      else if (k === 'style') for (const [sk, sv] of Object.entries(v)) el.style.setProperty(sk, String(sv));
      else if (k === 'dataset') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k.startsWith('on')) throw new Error('refusing a non-function handler');
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    setProps(el, props);
    return append(el, kids);
  }
  function s(tag, props, ...kids) {
    const el = document.createElementNS(SVGNS, tag);
    setProps(el, props);
    return append(el, kids);
  }

  const PATHS = { campaign: 'campaigns', identity: 'identities', observation: 'observations' };
  const pathFor = (kind, uuid) => `/${PATHS[kind]}/${encodeURIComponent(String(uuid))}`;
  function link(kind, uuid, text) {
    if (uuid === null || uuid === undefined || uuid === '') return h('span', { class: 'none' }, '–');
    return h('a', { href: pathFor(kind, uuid), 'data-nav': true, class: 'uuid', title: vis(uuid) },
      text === undefined ? short(uuid) : text);
  }
  // Tooling as a person reads it: catalogued libraries by name
  // (`paramiko 2.12.0`), anything else as `kind:value`.
  const toolingOf = (i) => (i.tooling_labels !== undefined ? i.tooling_labels : i.tooling);
  const chips = (values, max = 6, cls = 'chip') => {
    const v = list(values);
    if (!v.length) return h('span', { class: 'none' }, '–');
    return h('span', { class: 'chips' },
      v.slice(0, max).map((x) => h('span', { class: cls, title: vis(x) }, clip(x, 28))),
      v.length > max ? h('span', { class: 'more', title: v.slice(max).map(vis).join('\n') }, `+${v.length - max}`) : null);
  };
  function table(id, head, rows, opts = {}) {
    return h('table', { id, class: 'grid ' + (opts.cls || '') },
      h('thead', null, h('tr', null, head.map((c) => h('th', { class: typeof c === 'object' ? c.cls : null },
        typeof c === 'object' ? c.label : c)))),
      h('tbody', null, rows));
  }
  const section = (title, ...kids) => h('section', { class: 'card' }, h('h2', null, title), kids);
  const stat = (label, value, id) => h('div', { class: 'stat', 'data-stat': id || null },
    h('span', { class: 'k' }, label), h('span', { class: 'v' }, value));

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(path) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, `the daemon did not answer (${e.message})`);
    }
    let body = null;
    try { body = await res.json(); } catch (_) { body = null; }
    if (!res.ok) {
      const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
      throw new ApiError(res.status, msg);
    }
    if (body === null || typeof body !== 'object') throw new ApiError(res.status, 'the answer was not JSON');
    return body;
  }
  const q = (params) => Object.entries(params)
    .filter(([, v]) => v !== null && v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');

  // -------------------------------------------------------------- routing

  function parseRoute() {
    const path = location.pathname.replace(/\/+$/, '') || '/';
    const params = new URLSearchParams(location.search);
    const dec = (x) => { try { return decodeURIComponent(x); } catch (_) { return null; } };
    let m;
    if (path === '/') return { view: 'campaigns', offset: Math.max(0, parseInt(params.get('offset') || '0', 10) || 0) };
    if ((m = path.match(/^\/campaigns\/([^/]+)$/))) return { view: 'campaign', uuid: dec(m[1]) };
    if ((m = path.match(/^\/identities\/([^/]+)$/))) return { view: 'identity', uuid: dec(m[1]) };
    if ((m = path.match(/^\/observations\/([^/]+)$/))) return { view: 'observation', uuid: dec(m[1]) };
    if (path === '/search') return { view: 'search', q: params.get('q') || '' };
    return { view: 'notfound' };
  }

  let renderSeq = 0;
  let current = { route: null, watch: () => false, state: {} };

  function navigate(href, replace = false) {
    if (replace) history.replaceState(null, '', href); else history.pushState(null, '', href);
    render(false);
    if (!replace) window.scrollTo(0, 0);
  }

  const VIEWS = {
    campaigns: viewCampaigns,
    campaign: viewCampaign,
    identity: viewIdentity,
    observation: viewObservation,
    search: viewSearch,
    notfound: async () => ({ title: 'Not found', crumbs: [], node: h('div', { class: 'card error' }, 'No such page. ', h('a', { href: '/', 'data-nav': true }, 'Back to the campaigns.')) }),
  };

  async function render(refresh) {
    const seq = ++renderSeq;
    const route = parseRoute();
    const view = document.getElementById('view');
    if (!refresh) {
      current = { route, watch: () => false, state: {} };
      view.dataset.state = 'loading';
      view.dataset.view = route.view;
      if (!view.firstChild || !view.querySelector('.loading')) {
        view.replaceChildren(h('p', { class: 'muted loading' }, 'Loading…'));
      }
    }
    const input = document.getElementById('search-q');
    if (route.view === 'search' && document.activeElement !== input) input.value = route.q;
    let out;
    try {
      if (route.uuid === null) throw new ApiError(400, 'the address holds a malformed uuid');
      out = await VIEWS[route.view](route, current.state);
    } catch (e) {
      if (seq !== renderSeq || e.redirected) return;
      if (refresh && e.status !== 404) { flash(`refresh failed: ${e.message}`); return; }
      out = {
        title: 'Error', crumbs: [],
        node: h('div', { class: 'card error', id: 'error', 'data-status': e.status || 0 },
          h('strong', null, e.status === 404 ? 'Not found: ' : 'Could not load this page: '), vis(e.message)),
      };
    }
    if (seq !== renderSeq) return;
    const y = window.scrollY;
    view.replaceChildren(out.node);
    view.dataset.view = route.view;
    view.dataset.state = out.title === 'Error' ? 'error' : 'ready';
    view.dataset.renders = String((parseInt(view.dataset.renders || '0', 10) || 0) + 1);
    document.title = `${out.title} · clusterd`;
    setCrumbs(out.crumbs || []);
    current.watch = out.watch || (() => false);
    if (refresh) window.scrollTo(0, y);
  }

  function setCrumbs(items) {
    const nav = document.getElementById('crumbs');
    nav.replaceChildren(...[h('a', { href: '/', 'data-nav': true }, 'Campaigns')]
      .concat(items.flatMap((c) => [h('span', { class: 'sep' }, '›'), c])));
  }

  function flash(msg) {
    const el = h('div', { class: 'flash' }, msg);
    document.body.append(el);
    setTimeout(() => el.remove(), 5000);
  }

  document.addEventListener('click', (ev) => {
    const a = ev.target.closest && ev.target.closest('a[data-nav]');
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const url = new URL(a.getAttribute('href'), location.href);
    if (url.origin !== location.origin) return;
    ev.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener('popstate', () => render(false));

  // ------------------------------------------------------------ overview

  function overviewStrip(o) {
    const workers = list(o.workers);
    return h('section', { id: 'overview', class: 'strip' },
      stat('Observations', num(o.observations), 'observations'),
      stat('Identities', num(o.identities), 'identities'),
      stat('Campaigns', num(o.campaigns), 'campaigns'),
      stat('Leader', o.leader ? val(o.leader, 32) : h('span', { class: 'warn' }, 'none'), 'leader'),
      h('div', { class: 'workers', id: 'workers' },
        workers.length ? workers.map(workerChip) : h('span', { class: 'warn' }, 'no worker heartbeats')));
  }
  function workerChip(w) {
    const state = typeof w.state === 'string' ? w.state : 'unknown';
    const extra = [];
    if (w.dirty !== undefined && w.dirty !== null) extra.push(`dirty ${num(w.dirty)}`);
    if (w.lag !== undefined && w.lag !== null) extra.push(`lag ${num(w.lag)}`);
    if (w.last_tick_ms !== undefined && w.last_tick_ms !== null) extra.push(`tick ${num(w.last_tick_ms, 0)} ms`);
    if (w.restarts) extra.push(`${plural(w.restarts, 'restart')}`);
    const tip = [`worker ${vis(w.worker)}`, `state ${vis(state)}`, `host ${vis(w.host)} pid ${vis(w.pid)}`,
      `version ${vis(w.version)}`, `instance ${vis(w.instance_id)}`, `uptime ${num(w.uptime_s, 0)} s`,
      `heartbeat ${iso(w.ts)}`].concat(extra).join('\n');
    return h('span', { class: 'worker', 'data-worker': vis(w.worker), 'data-state': vis(state), title: tip },
      h('i', { class: 'dot' }), h('b', null, clip(w.worker, 24)), ' ', clip(state, 12),
      extra.length ? h('small', null, ' · ' + extra.join(' · ')) : null);
  }

  // ------------------------------------------------------- campaign list

  const PAGE = 50;
  async function viewCampaigns(route) {
    const [overview, page] = await Promise.all([
      api('/api/overview'),
      api(`/api/campaigns?${q({ offset: route.offset, limit: PAGE })}`),
    ]);
    const items = list(page.items);
    const offset = Number(page.offset) || 0;
    const total = Number(page.total) || 0;
    const rows = items.map((c, i) => h('tr', { 'data-uuid': vis(c.uuid) },
      h('td', { class: 'num muted' }, num(offset + i + 1)),
      h('td', null, link('campaign', c.uuid)),
      h('td', { class: 'num' }, num(c.identity_count)),
      h('td', { class: 'num' }, num(c.observation_count)),
      h('td', { class: 'num' }, confidenceBar(c.confidence)),
      h('td', null, timeCell(c.first_seen_at)),
      h('td', null, timeCell(c.last_seen_at)),
      h('td', null, chips(c.deckies, 1)),
      h('td', null, signalCounts(c.signals, true))));
    const pager = h('div', { class: 'pager', id: 'campaign-pager' },
      h('span', null, total ? `${num(offset + 1)}–${num(offset + items.length)} of ${plural(total, 'campaign')}` : 'no campaigns yet'),
      offset > 0 ? h('a', { href: `/?${q({ offset: Math.max(0, offset - PAGE) })}`, 'data-nav': true, rel: 'prev' }, '‹ previous') : null,
      offset + items.length < total ? h('a', { href: `/?${q({ offset: offset + PAGE })}`, 'data-nav': true, rel: 'next' }, 'next ›') : null);
    return {
      title: 'Campaigns',
      crumbs: [],
      watch: () => true,
      node: h('div', null,
        overviewStrip(overview),
        h('section', { class: 'card' },
          h('h2', null, 'Campaigns ', h('small', null, 'largest first, then most recent')),
          items.length
            ? table('campaign-list', [{ label: '#', cls: 'num' }, 'Campaign', { label: 'Identities', cls: 'num' },
              { label: 'Observations', cls: 'num' }, 'Confidence', 'First seen', 'Last seen', 'Deckies', 'Links by signal'], rows)
            : h('p', { class: 'muted', id: 'campaign-list-empty' }, 'No campaigns have formed yet. They appear here as identities start to cooperate.'),
          pager, items.length ? signalLegend(true) : null)),
    };
  }
  function confidenceBar(c) {
    const x = Number(c);
    if (c === null || c === undefined || !Number.isFinite(x)) return h('span', { class: 'none' }, '–');
    const pct = Math.max(0, Math.min(1, x)) * 100;
    return h('span', { class: 'conf', title: `confidence ${num(x, 3)}` },
      h('span', { class: 'bar' }, h('span', { style: { 'width': pct.toFixed(0) + '%' } })), wt(x));
  }
  function signalCounts(sig, compact = false) {
    if (!sig || typeof sig !== 'object') return h('span', { class: 'none' }, '–');
    const parts = SIGNALS.filter(([k]) => Number(sig[k]) > 0).map(([k, label, colour]) =>
      h('span', { class: 'sig', 'data-signal': k, title: `${num(sig[k])} ${label} link(s)` },
        h('i', { style: { 'background': colour } }), compact ? num(sig[k]) : `${label} ${num(sig[k])}`));
    return parts.length ? h('span', { class: 'sigs' }, parts) : h('span', { class: 'none' }, '–');
  }

  // ------------------------------------------------------------ campaign

  async function viewCampaign(route, state) {
    const data = await api(`/api/campaigns/${encodeURIComponent(route.uuid)}`);
    const c = data.campaign || {};
    const identities = list(data.identities);
    const edges = list(data.edges);
    const timeline = list(data.timeline);
    const model = foldCampaign(identities, edges, timeline);
    const watched = new Set([c.uuid, route.uuid, ...identities.map((i) => i.uuid)]);
    const tableHost = h('div', { id: 'campaign-identities-host' });
    const showGroup = (group) => {
      state.group = group;
      renderIdentityTable(tableHost, model, state);
      tableHost.scrollIntoView({ block: 'start', behavior: 'smooth' });
    };
    renderIdentityTable(tableHost, model, state);
    const node = h('div', null,
      h('section', { class: 'card head' },
        h('h1', null, 'Campaign ', h('span', { class: 'mono', id: 'campaign-uuid' }, vis(c.uuid))),
        followedNote('campaign', data.followed_from, c.uuid),
        h('div', { class: 'strip' },
          stat('Identities', num(c.identity_count)), stat('Observations', num(c.observation_count)),
          stat('Confidence', confidenceBar(c.confidence)), stat('First seen', timeCell(c.first_seen_at)),
          stat('Last seen', timeCell(c.last_seen_at)), stat('Deckies', chips(c.deckies, 5)),
          stat('Links', signalCounts(c.signals)))),
      h('section', { class: 'card' },
        h('h2', null, 'Identities and their links ', h('small', null, model.folded
          ? `the ${num(model.top.length)} largest and best-connected of ${plural(identities.length, 'identity', 'identities')}; the other ${num(model.folded)} are folded into groups by their main decky`
          : plural(identities.length, 'identity', 'identities'))),
        h('div', { id: 'campaign-graph' }, drawGraph(model, showGroup)),
        signalLegend()),
      h('section', { class: 'card' },
        h('h2', null, 'Kill-chain timeline ', h('small', null, 'UKC phase of each session, per identity and decky (UTC)')),
        h('div', { id: 'timeline' }, drawTimeline(model)),
        phaseLegend(model.phasesSeen)),
      tableHost,
      edgeTable(edges, model, state));
    return {
      title: `Campaign ${short(c.uuid)}`,
      crumbs: [h('span', { class: 'mono' }, short(c.uuid))],
      watch: (uuids) => uuids.some((u) => watched.has(u)),
      node,
    };
  }

  function followedNote(kind, from, to) {
    if (!from) return null;
    return h('p', { class: 'note', id: 'followed-from' }, `${kind === 'campaign' ? 'Campaign' : 'Identity'} `,
      h('span', { class: 'mono' }, vis(from)), ` was merged out; this is the ${kind} it was merged into, `,
      h('span', { class: 'mono' }, short(to)), '.');
  }

  // Which identities are drawn, which are folded, and how folded ones group.
  const TOP_BY_SIZE = 20, TOP_BY_DEGREE = 10, FOLD_ABOVE = 36, MAX_GROUPS = 8;
  const BACKBONE_PER_NODE = 2, BACKBONE_MAX = 60, MAX_EDGE_LABELS = 14;
  function foldCampaign(identities, edges, timeline) {
    const byId = new Map(identities.map((i) => [i.uuid, i]));
    const degree = new Map(), strength = new Map();
    for (const e of edges) {
      for (const x of [e.a, e.b]) {
        degree.set(x, (degree.get(x) || 0) + 1);
        strength.set(x, (strength.get(x) || 0) + (Number(e.weight) || 0));
      }
    }
    const rowsBy = new Map();
    for (const r of timeline) {
      if (!rowsBy.has(r.identity_uuid)) rowsBy.set(r.identity_uuid, []);
      rowsBy.get(r.identity_uuid).push(r);
    }
    const cmp = (key) => (x, y) => (key(y) - key(x)) || (String(x.uuid) < String(y.uuid) ? -1 : 1);
    const bySize = identities.slice().sort(cmp((i) => Number(i.observation_count) || 0));
    let top;
    if (identities.length <= FOLD_ABOVE) top = bySize;
    else {
      top = bySize.slice(0, TOP_BY_SIZE);
      const chosen = new Set(top.map((i) => i.uuid));
      const byDeg = identities.filter((i) => !chosen.has(i.uuid))
        .sort(cmp((i) => (degree.get(i.uuid) || 0) * 1000 + (strength.get(i.uuid) || 0)));
      top = top.concat(byDeg.slice(0, TOP_BY_DEGREE));
    }
    const topSet = new Set(top.map((i) => i.uuid));
    // A folded identity's group is the decky it had most sessions on.
    const mainDecky = (uuid) => {
      let best = null, n = -1;
      for (const r of rowsBy.get(uuid) || []) {
        const k = list(r.sessions).length;
        if (k > n || (k === n && String(r.decky_id) < String(best))) { best = r.decky_id; n = k; }
      }
      return best;
    };
    const groupsBy = new Map();
    for (const i of identities) {
      if (topSet.has(i.uuid)) continue;
      const d = mainDecky(i.uuid);
      const key = d === null || d === undefined ? '\u0000none' : String(d);
      if (!groupsBy.has(key)) groupsBy.set(key, []);
      groupsBy.get(key).push(i.uuid);
    }
    let groups = [...groupsBy.entries()].map(([key, members]) => ({
      key, decky: key === '\u0000none' ? null : key, members,
    })).sort((x, y) => (y.members.length - x.members.length) || (x.key < y.key ? -1 : 1));
    if (groups.length > MAX_GROUPS) {
      const rest = groups.slice(MAX_GROUPS - 1);
      groups = groups.slice(0, MAX_GROUPS - 1).concat([{
        key: '\u0000other', decky: null, other: rest.length, members: rest.flatMap((g) => g.members),
      }]);
    }
    const groupOf = new Map();
    groups.forEach((g, i) => { g.id = `g${i}`; for (const m of g.members) groupOf.set(m, g); });
    const phasesSeen = new Set();
    for (const r of timeline) for (const x of list(r.sessions)) {
      if (x.first_phase) phasesSeen.add(x.first_phase);
      if (x.last_phase) phasesSeen.add(x.last_phase);
    }
    return {
      identities, edges, timeline, byId, degree, strength, rowsBy, top, topSet, groups, groupOf,
      folded: identities.length - top.length, phasesSeen,
    };
  }

  // A phase name as the legends spell it (`command and control`).
  const phaseWords = (p) => (typeof p === 'string' && p ? clip(p.replace(/_/g, ' '), 22) : '?');
  // One short phrase per signal of a campaign edge.
  function signalPhrase(sg) {
    const d = sg.detail || {};
    const w = wt(sg.weight);
    switch (sg.signal) {
      case 'handoff':
        return `hand-off on ${clip(d.decky, 20) || '?'} ${phaseWords(d.from_phase)}→${phaseWords(d.to_phase)} ${w}`;
      case 'planted_key':
        return `planted key${d.decky ? ' on ' + clip(d.decky, 20) : ''} ${w}`;
      case 'rhythm':
        return `rhythm${d.bits !== undefined && d.bits !== null ? ` ${num(d.bits)} bits` : ''} ${w}`;
      case 'infrastructure':
        return `shared infra${list(d.values).length ? ` (${plural(list(d.values).length, 'value')})` : ''} ${w}`;
      default:
        return `${signalLabel(sg.signal)} ${w}`;
    }
  }
  function signalDetail(sg) {
    const d = sg.detail || {};
    const parts = [signalPhrase(sg)];
    if (list(d.values).length) parts.push('  ' + list(d.values).slice(0, 8).map((v) => clip(v, 80)).join('\n  '));
    return parts.join('\n');
  }
  const sortedSignals = (e) => list(e.signals).slice().sort((x, y) => (Number(y.weight) || 0) - (Number(x.weight) || 0));

  function drawGraph(model, onGroup) {
    // Room for what is drawn: a pair needs a strip, a crowd the full box.
    const drawn = model.top.length + model.groups.length;
    const W = 1000, H = drawn > 12 ? 540 : drawn > 5 ? 400 : drawn > 2 ? 300 : 180;
    if (!model.identities.length) return h('p', { class: 'muted' }, 'This campaign has no identities.');
    // Nodes: drawn identities, then groups.
    const nodes = model.top.map((i) => ({
      id: i.uuid, kind: 'identity', item: i,
      r: Math.min(26, 7 + 3.2 * Math.sqrt(Number(i.observation_count) || 1)),
    })).concat(model.groups.map((g) => ({
      id: g.id, kind: 'group', group: g, r: Math.min(30, 12 + 2.2 * Math.sqrt(g.members.length)),
    })));
    const index = new Map(nodes.map((n, i) => [n.id, i]));
    const nodeOf = (uuid) => (model.topSet.has(uuid) ? uuid : (model.groupOf.get(uuid) || {}).id);
    // Edges between drawn nodes, aggregated where a group is an end.
    const agg = new Map();
    for (const e of model.edges) {
      const a = nodeOf(e.a), b = nodeOf(e.b);
      if (a === undefined || b === undefined || a === b) continue;
      const [x, y] = index.get(a) < index.get(b) ? [a, b] : [b, a];
      const key = `${index.get(x)}|${index.get(y)}`;
      let g = agg.get(key);
      if (!g) { g = { a: x, b: y, count: 0, weight: 0, max: 0, signals: new Map(), best: null }; agg.set(key, g); }
      const w = Number(e.weight) || 0;
      g.count += 1; g.weight += w;
      if (w >= g.max) { g.max = w; g.best = e; }
      for (const sg of list(e.signals)) g.signals.set(sg.signal, (g.signals.get(sg.signal) || 0) + 1);
    }
    const links = [...agg.values()].sort((x, y) => (y.max - x.max) || (y.count - x.count));
    // The backbone: each node's strongest links (every node keeps at least
    // one), capped. The other links appear when their node is hovered.
    const kept = new Map();
    let backbone = 0;
    for (const l of links) {
      const ka = kept.get(l.a) || 0, kb = kept.get(l.b) || 0;
      if ((ka < BACKBONE_PER_NODE || kb < BACKBONE_PER_NODE) && (backbone < BACKBONE_MAX || ka === 0 || kb === 0)) {
        l.backbone = true; backbone += 1;
        kept.set(l.a, ka + 1); kept.set(l.b, kb + 1);
      }
    }
    layout(nodes, links.filter((l) => l.backbone), index, W, H);

    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'graph', role: 'img',
      'aria-label': `graph of ${nodes.length} nodes and ${links.length} links`,
      'data-nodes': nodes.length, 'data-links': links.length, 'data-backbone': backbone });
    const gEdges = s('g', { class: 'edges' }), gLabels = s('g', { class: 'elabels' }), gNodes = s('g', { class: 'nodes' });
    svg.append(gEdges, gLabels, gNodes);
    const placed = [];
    const fits = (box) => placed.every((b) => box.x1 < b.x0 || box.x0 > b.x1 || box.y1 < b.y0 || box.y0 > b.y1) &&
      nodes.every((n) => {
        const dx = Math.max(box.x0 - n.x, 0, n.x - box.x1), dy = Math.max(box.y0 - n.y, 0, n.y - box.y1);
        return dx * dx + dy * dy > (n.r + 2) * (n.r + 2);
      });
    links.forEach((l) => {
      const A = nodes[index.get(l.a)], B = nodes[index.get(l.b)];
      const dominant = [...l.signals.entries()].sort((x, y) => y[1] - x[1])[0];
      const colour = l.count === 1 && l.best ? signalColour((sortedSignals(l.best)[0] || {}).signal) : signalColour(dominant && dominant[0]);
      const width = Math.max(1, Math.min(6, 1 + 2.2 * l.max));
      let label, tip;
      if (l.count === 1) {
        const sigs = sortedSignals(l.best);
        label = sigs.slice(0, 2).map(signalPhrase).join(' · ') + (sigs.length > 2 ? ` +${sigs.length - 2}` : '');
        tip = `link weight ${wt(l.best.weight)}\n` + sigs.map(signalDetail).join('\n');
      } else {
        const parts = [...l.signals.entries()].sort((x, y) => y[1] - x[1]).map(([k, n]) => `${n} ${signalLabel(k)}`);
        label = `${plural(l.count, 'link')}: ${parts.slice(0, 2).join(', ')}${parts.length > 2 ? '…' : ''}`;
        tip = `${plural(l.count, 'link')} (strongest ${wt(l.max)}, total ${wt(l.weight)})\n${parts.join('\n')}`;
      }
      const ends = { 'data-a': vis(l.a), 'data-b': vis(l.b) };
      const line = s('line', { x1: A.x.toFixed(1), y1: A.y.toFixed(1), x2: B.x.toFixed(1), y2: B.y.toFixed(1),
        stroke: colour, 'stroke-width': width.toFixed(1), class: `edge${l.count > 1 ? ' agg' : ''}${l.backbone ? '' : ' extra'}`, ...ends },
      s('title', null, tip));
      gEdges.append(line);
      const mx = (A.x + B.x) / 2, my = (A.y + B.y) / 2;
      // As much of the label as the link has room for (a long link between
      // two nodes shows it whole).
      const room = Math.hypot(B.x - A.x, B.y - A.y) - (A.r || 0) - (B.r || 0) - 16;
      const shown = clip(label, Math.max(24, Math.min(120, Math.floor(room / 5.7))));
      const half = (Array.from(shown).length * 5.7) / 2;
      const box = { x0: mx - half, x1: mx + half, y0: my - 13, y1: my + 1 };
      let on = false;
      if (l.backbone && placed.length < MAX_EDGE_LABELS && fits(box)) { placed.push(box); on = true; }
      const text = s('text', { x: mx.toFixed(1), y: (my - 3).toFixed(1), class: on ? 'elabel on' : 'elabel', 'text-anchor': 'middle', ...ends },
        s('title', null, tip), shown);
      gLabels.append(text);
    });
    for (const n of nodes) {
      let g;
      if (n.kind === 'identity') {
        const i = n.item;
        g = s('a', { href: pathFor('identity', i.uuid), 'data-nav': true, class: 'node', 'data-uuid': vis(i.uuid) },
          s('title', null, `identity ${vis(i.uuid)}\n${plural(i.observation_count, 'observation')} · ${plural(i.ip_count, 'IP')}\n` +
            `confidence ${wt(i.confidence)}\n${plural(model.degree.get(i.uuid) || 0, 'link')}\n` +
            `IPs: ${list(i.ips).map((x) => clip(x, 40)).join(', ')}\ntooling: ${list(toolingOf(i)).map((x) => clip(x, 40)).join(', ')}`),
          s('circle', { cx: n.x.toFixed(1), cy: n.y.toFixed(1), r: n.r.toFixed(1) }),
          s('text', { x: n.x.toFixed(1), y: (n.y + n.r + 11).toFixed(1), 'text-anchor': 'middle', class: 'nlabel' }, short(i.uuid)),
          s('text', { x: n.x.toFixed(1), y: (n.y + 4).toFixed(1), 'text-anchor': 'middle', class: 'ncount' }, num(i.observation_count)));
      } else {
        const grp = n.group;
        const where = grp.other ? `${num(grp.other)} other deckies` : grp.decky === null ? 'no decky' : clip(grp.decky, 22);
        g = s('g', { class: 'node group', 'data-group': grp.id, tabindex: 0, role: 'button', onclick: () => onGroup(grp),
          onkeydown: (ev) => { if (ev.key === 'Enter') onGroup(grp); } },
        s('title', null, `${plural(grp.members.length, 'identity', 'identities')} folded: main decky ${grp.other ? 'one of ' + num(grp.other) + ' others' : grp.decky === null ? 'none' : vis(grp.decky)}\nclick to list them`),
        s('circle', { cx: n.x.toFixed(1), cy: n.y.toFixed(1), r: n.r.toFixed(1) }),
        s('text', { x: n.x.toFixed(1), y: (n.y + 4).toFixed(1), 'text-anchor': 'middle', class: 'ncount' }, `+${num(grp.members.length)}`),
        s('text', { x: n.x.toFixed(1), y: (n.y + n.r + 11).toFixed(1), 'text-anchor': 'middle', class: 'nlabel' }, where));
      }
      const focus = (on) => {
        svg.classList.toggle('focus', on);
        for (const el of svg.querySelectorAll('.edge, .elabel')) {
          const hit = el.getAttribute('data-a') === vis(n.id) || el.getAttribute('data-b') === vis(n.id);
          el.classList.toggle('hl', on && hit);
        }
      };
      g.addEventListener('mouseenter', () => focus(true));
      g.addEventListener('mouseleave', () => focus(false));
      g.addEventListener('focus', () => focus(true));
      g.addEventListener('blur', () => focus(false));
      gNodes.append(g);
    }
    return svg;
  }

  // A small deterministic force layout: nodes start on a sunflower spiral in
  // rank order, then springs pull linked nodes together and every pair
  // repels, for a fixed number of steps. Same input, same picture.
  function layout(nodes, links, index, W, H) {
    const n = nodes.length, cx = W / 2, cy = H / 2;
    const R = Math.min(W, H) * 0.42;
    nodes.forEach((p, i) => {
      const r = R * Math.sqrt((i + 0.5) / n), t = i * 2.399963;
      p.x = cx + r * Math.cos(t) * (W / H); p.y = cy + r * Math.sin(t);
      p.vx = 0; p.vy = 0;
    });
    if (n === 1) { nodes[0].x = cx; nodes[0].y = cy; return; }
    const k = Math.sqrt((W * H) / n) * 0.55;
    const springs = links.map((l) => [index.get(l.a), index.get(l.b), Math.min(2, 0.4 + l.max)]);
    for (let step = 0; step < 300; step++) {
      const temp = 0.1 * (1 - step / 300) + 0.005;
      const fx = new Float64Array(n), fy = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          let dx = nodes[i].x - nodes[j].x, dy = nodes[i].y - nodes[j].y;
          let d2 = dx * dx + dy * dy;
          if (d2 < 1) { dx = (i - j) * 0.1; dy = 0.1; d2 = 1; }
          const d = Math.sqrt(d2);
          const minD = nodes[i].r + nodes[j].r + 40;
          const f = (k * k) / d + (d < minD ? (minD - d) * 4 : 0);
          fx[i] += (dx / d) * f; fy[i] += (dy / d) * f;
          fx[j] -= (dx / d) * f; fy[j] -= (dy / d) * f;
        }
      }
      for (const [a, b, w] of springs) {
        const dx = nodes[a].x - nodes[b].x, dy = nodes[a].y - nodes[b].y;
        const d = Math.sqrt(dx * dx + dy * dy) || 1;
        const f = ((d * d) / k) * w * 0.5;
        fx[a] -= (dx / d) * f; fy[a] -= (dy / d) * f;
        fx[b] += (dx / d) * f; fy[b] += (dy / d) * f;
      }
      for (let i = 0; i < n; i++) {
        fx[i] += (cx - nodes[i].x) * 0.9; fy[i] += (cy - nodes[i].y) * 1.6;
        const len = Math.sqrt(fx[i] * fx[i] + fy[i] * fy[i]) || 1;
        const move = Math.min(len * temp, 40);
        nodes[i].x += (fx[i] / len) * move; nodes[i].y += (fy[i] / len) * move;
      }
    }
    // Fit into the canvas, leaving room for labels.
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of nodes) { x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x); y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y); }
    const padX = 70, padT = 36, padB = 46;
    // Never stretched more tall than wide (a pair or a chain would become
    // a line along the top), and centred in the room left.
    const sx = (W - 2 * padX) / Math.max(1, x1 - x0);
    const sy = Math.min(sx, (H - padT - padB) / Math.max(1, y1 - y0));
    const my = (y0 + y1) / 2, fy = padT + (H - padT - padB) / 2;
    for (const p of nodes) {
      p.x = x1 === x0 ? cx : padX + (p.x - x0) * sx;
      p.y = fy + (p.y - my) * sy;
    }
  }

  function signalLegend(counts = false) {
    return h('div', { class: 'legend', id: 'signal-legend' },
      counts ? h('span', { class: 'muted' }, 'Links by signal:') : null,
      SIGNALS.map(([, label, colour]) => h('span', null, h('i', { class: counts ? null : 'line', style: { 'background': colour } }), label)),
      counts ? null : h('span', { class: 'muted' }, 'line width: weight · dashed: several links folded together · hover a node for its links'));
  }
  function phaseLegend(seen) {
    const phases = PHASES.filter(([p]) => seen.has(p));
    const unknown = [...seen].filter((p) => !PHASE_COLOUR.has(p));
    return h('div', { class: 'legend', id: 'phase-legend' },
      phases.map(([p, colour]) => h('span', { 'data-phase': p }, h('i', { style: { 'background': colour } }), p.replace(/_/g, ' '))),
      unknown.length ? h('span', { title: unknown.map(vis).join('\n') }, h('i', { style: { 'background': UNKNOWN_PHASE } }), 'other / none') : null,
      h('span', { class: 'sep' }),
      h('span', null, h('i', { class: 'sensor' }), 'phase from the sensor'),
      h('span', null, h('i', { class: 'inferred' }), 'phase inferred from commands'));
  }

  // Rows: each drawn identity × decky, then one row per folded group × decky.
  function drawTimeline(model) {
    const rows = [];
    for (const i of model.top) {
      const rs = (model.rowsBy.get(i.uuid) || []).slice().sort((x, y) => (String(x.decky_id) < String(y.decky_id) ? -1 : 1));
      rs.forEach((r, k) => rows.push({ kind: 'identity', uuid: i.uuid, first: k === 0, decky: r.decky_id, sessions: list(r.sessions) }));
    }
    if (model.folded) {
      const byDecky = new Map();
      for (const g of model.groups) for (const m of g.members) {
        for (const r of model.rowsBy.get(m) || []) {
          const key = String(r.decky_id);
          if (!byDecky.has(key)) byDecky.set(key, { decky: r.decky_id, ids: new Set(), sessions: [] });
          const e = byDecky.get(key);
          e.ids.add(m);
          e.sessions.push(...list(r.sessions));
        }
      }
      const aggRows = [...byDecky.values()].sort((x, y) => (y.ids.size - x.ids.size) || (String(x.decky) < String(y.decky) ? -1 : 1));
      const MAX_AGG = 12;
      aggRows.slice(0, MAX_AGG).forEach((e) => rows.push({ kind: 'group', count: e.ids.size, decky: e.decky, sessions: e.sessions }));
      if (aggRows.length > MAX_AGG) {
        const rest = aggRows.slice(MAX_AGG);
        const ids = new Set(rest.flatMap((e) => [...e.ids]));
        rows.push({ kind: 'group', count: ids.size, decky: null, other: rest.length, sessions: rest.flatMap((e) => e.sessions) });
      }
    }
    if (!rows.length) return h('p', { class: 'muted' }, 'No sessions recorded for this campaign.');
    let t0 = Infinity, t1 = -Infinity;
    for (const r of rows) for (const x of r.sessions) {
      const a = parseTime(x.started_at), b = parseTime(x.ended_at) || a;
      if (a) { t0 = Math.min(t0, a.getTime()); t1 = Math.max(t1, b.getTime()); }
    }
    if (!Number.isFinite(t0)) return h('p', { class: 'muted' }, 'The sessions of this campaign carry no times.');
    if (t1 - t0 < 60000) { t0 -= 30000; t1 += 30000; }
    const span = t1 - t0; t0 -= span * 0.01; t1 += span * 0.01;
    const W = 1000, LEFT = 250, RIGHT = 12, ROW = 17, TOP = 24;
    const H = TOP + rows.length * ROW + 8;
    const X = (t) => LEFT + ((t - t0) / (t1 - t0)) * (W - LEFT - RIGHT);
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'timeline', role: 'img', 'data-rows': rows.length,
      'aria-label': `timeline of ${rows.length} rows` });
    // Axis: five ticks in UTC.
    const axis = s('g', { class: 'axis' });
    for (let k = 0; k <= 4; k++) {
      const t = t0 + ((t1 - t0) * k) / 4;
      const x = X(t);
      const label = new Date(t).toISOString().slice(0, 16).replace('T', ' ') + 'Z';
      axis.append(s('line', { x1: x.toFixed(1), x2: x.toFixed(1), y1: TOP - 4, y2: H - 4 }),
        s('text', { x: x.toFixed(1), y: 12, 'text-anchor': k === 0 ? 'start' : k === 4 ? 'end' : 'middle' }, label));
    }
    svg.append(axis);
    rows.forEach((r, idx) => {
      const y = TOP + idx * ROW;
      const g = s('g', { class: `trow ${r.kind}`, 'data-row': idx, 'data-identity': r.uuid ? vis(r.uuid) : null, 'data-decky': vis(r.decky) });
      if (idx % 2 === 0) g.append(s('rect', { x: 0, y, width: W, height: ROW, class: 'band' }));
      if (r.kind === 'identity' && r.first && idx > 0) g.append(s('line', { x1: 0, x2: W, y1: y, y2: y, class: 'sepline' }));
      const deckyText = r.decky === null || r.decky === undefined ? (r.other ? `${num(r.other)} other deckies` : 'no decky') : clip(r.decky, 18);
      if (r.kind === 'identity') {
        g.append(s('a', { href: pathFor('identity', r.uuid), 'data-nav': true },
          s('text', { x: 6, y: y + 12, class: r.first ? 'rlabel id' : 'rlabel id faint' }, short(r.uuid))));
        g.append(s('text', { x: 92, y: y + 12, class: 'rlabel' }, s('title', null, vis(r.decky)), deckyText));
      } else {
        g.append(s('text', { x: 6, y: y + 12, class: 'rlabel grp' }, `+${plural(r.count, 'identity', 'identities')}`));
        g.append(s('text', { x: 130, y: y + 12, class: 'rlabel' }, s('title', null, vis(r.decky)), deckyText));
      }
      for (const x of r.sessions) {
        const a = parseTime(x.started_at);
        if (!a) continue;
        const b = parseTime(x.ended_at) || a;
        let xa = X(a.getTime()), xb = X(b.getTime());
        if (xb - xa < 3) { const m = (xa + xb) / 2; xa = m - 1.5; xb = m + 1.5; }
        const inferred = x.phase_source === 'inferred';
        const cls = inferred ? 'seg inferred' : 'seg';
        const tip = `${r.kind === 'identity' ? 'identity ' + vis(r.uuid) : plural(r.count, 'folded identity', 'folded identities')}\n` +
          `decky ${vis(r.decky)}\n${iso(x.started_at)} → ${iso(x.ended_at)} (${duration(x.started_at, x.ended_at)})\n` +
          `phase ${vis(x.first_phase) || 'unknown'}${x.last_phase && x.last_phase !== x.first_phase ? ' → ' + vis(x.last_phase) : ''}` +
          ` (${vis(x.phase_source) || 'no phase'})`;
        const colA = PHASE_COLOUR.get(x.first_phase) || UNKNOWN_PHASE;
        const colB = PHASE_COLOUR.get(x.last_phase) || colA;
        const seg = s('g', { class: cls, 'data-phase': vis(x.first_phase), 'data-source': vis(x.phase_source) }, s('title', null, tip));
        const yy = y + 3, hh = ROW - 6;
        if (colA === colB) {
          seg.append(s('rect', { x: xa.toFixed(1), y: yy, width: (xb - xa).toFixed(1), height: hh, fill: colA, stroke: colA }));
        } else {
          const mid = (xa + xb) / 2;
          seg.append(s('rect', { x: xa.toFixed(1), y: yy, width: (mid - xa).toFixed(1), height: hh, fill: colA, stroke: colA }),
            s('rect', { x: mid.toFixed(1), y: yy, width: (xb - mid).toFixed(1), height: hh, fill: colB, stroke: colB }));
        }
        g.append(seg);
      }
      svg.append(g);
    });
    return svg;
  }

  // All identities of the campaign, paged; a folded group can filter it.
  function renderIdentityTable(host, model, state) {
    const PER = 50;
    const group = state.group || null;
    const all = group ? group.members.map((u) => model.byId.get(u)).filter(Boolean) : model.identities.slice()
      .sort((x, y) => ((Number(y.observation_count) || 0) - (Number(x.observation_count) || 0)) || (String(x.uuid) < String(y.uuid) ? -1 : 1));
    const pages = Math.max(1, Math.ceil(all.length / PER));
    const page = Math.min(state.page || 0, pages - 1);
    const items = all.slice(page * PER, page * PER + PER);
    const redraw = (p, g) => { state.page = p; if (g !== undefined) state.group = g; renderIdentityTable(host, model, state); };
    const rows = items.map((i) => h('tr', { 'data-uuid': vis(i.uuid), class: model.topSet.has(i.uuid) ? 'drawn' : null },
      h('td', null, link('identity', i.uuid)),
      h('td', { class: 'num' }, num(i.observation_count)),
      h('td', { class: 'num' }, num(model.degree.get(i.uuid) || 0)),
      h('td', null, confidenceBar(i.confidence)),
      h('td', null, chips(i.ips, 3, 'chip mono'), Number(i.ip_count) > list(i.ips).length ? h('span', { class: 'more' }, ` of ${num(i.ip_count)}`) : null),
      h('td', null, chips(list(i.asns).map((a) => `AS${vis(a)}`), 3)),
      h('td', null, chips(toolingOf(i), 2)),
      h('td', null, timeCell(i.first_seen_at)),
      h('td', null, timeCell(i.last_seen_at))));
    const where = group ? (group.other ? `${num(group.other)} smaller deckies` : group.decky === null ? 'no decky' : clip(group.decky, 30)) : null;
    host.replaceChildren(h('section', { class: 'card' },
      h('h2', null, 'All identities ', h('small', null, group
        ? `${plural(all.length, 'folded identity', 'folded identities')} whose main decky is ${where}`
        : `${plural(all.length, 'identity', 'identities')}; highlighted rows are drawn in the graph`),
      group ? h('button', { type: 'button', class: 'small', onclick: () => redraw(0, null) }, 'show all') : null),
      table('campaign-identities', ['Identity', { label: 'Obs.', cls: 'num' }, { label: 'Links', cls: 'num' }, 'Confidence', 'IPs', 'ASNs', 'Tooling', 'First seen', 'Last seen'], rows),
      pages > 1 ? h('div', { class: 'pager' },
        h('span', null, `page ${page + 1} of ${pages}`),
        page > 0 ? h('button', { type: 'button', class: 'small', onclick: () => redraw(page - 1) }, '‹ previous') : null,
        page + 1 < pages ? h('button', { type: 'button', class: 'small', onclick: () => redraw(page + 1) }, 'next ›') : null) : null));
  }

  function edgeTable(edges, model, state) {
    const host = h('div', { id: 'campaign-edges-host' });
    const sorted = edges.slice().sort((x, y) => (Number(y.weight) || 0) - (Number(x.weight) || 0));
    const draw = () => {
      const shown = state.allEdges ? sorted : sorted.slice(0, 40);
      const rows = [];
      for (const e of shown) {
        const detail = h('td', { colspan: 4, class: 'explain' });
        const detailRow = h('tr', { class: 'detail', hidden: true }, detail);
        rows.push(h('tr', { 'data-a': vis(e.a), 'data-b': vis(e.b) },
          h('td', null, link('identity', e.a), ' – ', link('identity', e.b)),
          h('td', { class: 'num' }, wt(e.weight)),
          h('td', null, sortedSignals(e).map((sg) => h('div', { class: 'sigline' },
            h('i', { style: { 'background': signalColour(sg.signal) } }), signalPhrase(sg),
            list((sg.detail || {}).values).length ? h('span', { class: 'vals' }, ' ', chips(sg.detail.values, 3, 'chip mono')) : null))),
          h('td', null, h('button', { type: 'button', class: 'small', onclick: () => toggleExplain(detailRow, detail, e.a, e.b) }, 'explain'))),
        detailRow);
      }
      host.replaceChildren(h('section', { class: 'card' },
        h('h2', null, 'Links ', h('small', null, `${plural(edges.length, 'link')} between identities, strongest first`)),
        edges.length ? table('campaign-edges', ['Identities', { label: 'Weight', cls: 'num' }, 'Signals', ''], rows)
          : h('p', { class: 'muted' }, 'No links: a single-identity campaign.'),
        sorted.length > 40 ? h('button', { type: 'button', class: 'small', onclick: () => { state.allEdges = !state.allEdges; draw(); } },
          state.allEdges ? 'show the strongest 40' : `show all ${num(sorted.length)}`) : null));
    };
    draw();
    return host;
  }

  async function toggleExplain(row, cell, a, b) {
    if (!row.hidden) { row.hidden = true; return; }
    row.hidden = false;
    cell.replaceChildren(h('span', { class: 'muted' }, 'asking the daemon…'));
    try {
      const x = await api(`/api/explain?${q({ a, b })}`);
      cell.replaceChildren(explainBlock(x));
    } catch (e) {
      cell.replaceChildren(h('span', { class: 'error' }, `explain failed: ${vis(e.message)}`));
    }
  }
  function explainBlock(x) {
    return h('div', { class: 'explain-block' },
      h('div', null, h('b', null, vis(x.verdict) || 'no verdict'), ` · ${vis(x.level)} level · weight ${wt(x.weight)} against threshold ${wt(x.threshold)}`),
      table(null, ['Signal', { label: 'Weight', cls: 'num' }, 'Values'], list(x.signals).map((sg) => h('tr', null,
        h('td', null, signalLabel(sg.signal)), h('td', { class: 'num' }, wt(sg.weight)), h('td', null, chips(sg.values, 4, 'chip mono'))))),
      list(x.notes).length ? h('ul', { class: 'notes' }, list(x.notes).map((n) => h('li', null, clip(n, 300)))) : null);
  }

  // ------------------------------------------------------------ identity

  async function viewIdentity(route, state) {
    const [data, overview] = await Promise.all([
      api(`/api/identities/${encodeURIComponent(route.uuid)}`),
      api('/api/overview').catch(() => null),
    ]);
    const i = data.identity || {};
    const members = list(data.members);
    const watched = new Set([i.uuid, route.uuid, i.campaign_id, ...members.map((m) => m.uuid)]);
    const rollup = (label, values, mono = true, id) => h('div', { class: 'rollup', 'data-rollup': id },
      h('h3', null, label, ' ', h('small', null, num(list(values).length))),
      list(values).length ? h('ul', null, list(values).slice(0, 30).map((v) => h('li', null, mono ? code(v, 90) : val(v, 90))),
        list(values).length > 30 ? h('li', { class: 'muted' }, `… and ${num(list(values).length - 30)} more`) : null)
        : h('p', { class: 'none' }, '–'));
    const rows = members.map((m) => {
      const detail = h('td', { colspan: 6, class: 'explain' });
      const detailRow = h('tr', { class: 'detail', hidden: true }, detail);
      return [h('tr', { 'data-uuid': vis(m.uuid) },
        h('td', null, link('observation', m.uuid)),
        h('td', { class: 'mono' }, val(m.ip, 40)),
        h('td', null, m.asn === null || m.asn === undefined ? h('span', { class: 'none' }, '–') : `AS${clip(m.asn, 12)}`),
        h('td', null, timeCell(m.first_seen)),
        h('td', null, timeCell(m.last_seen)),
        h('td', { class: 'why' }, whyCell(m, detailRow, detail))), detailRow];
    });
    return {
      title: `Identity ${short(i.uuid)}`,
      crumbs: [i.campaign_id ? link('campaign', i.campaign_id) : null, h('span', { class: 'mono' }, short(i.uuid))].filter(Boolean),
      watch: (uuids) => uuids.some((u) => watched.has(u)),
      node: h('div', null,
        h('section', { class: 'card head' },
          h('h1', null, 'Identity ', h('span', { class: 'mono', id: 'identity-uuid' }, vis(i.uuid))),
          followedNote('identity', data.followed_from, i.uuid),
          h('div', { class: 'strip' },
            stat('Observations', num(i.observation_count)), stat('IPs', num(i.ip_count)),
            stat('Confidence', confidenceBar(i.confidence)),
            stat('First seen', timeCell(i.first_seen_at)), stat('Last seen', timeCell(i.last_seen_at)),
            stat('Campaign', i.campaign_id ? link('campaign', i.campaign_id) : h('span', { class: 'none' }, 'none')))),
        h('section', { class: 'card', id: 'identity-rollups' },
          h('h2', null, 'Evidence rolled up over its members'),
          h('div', { class: 'rollups' },
            rollup('Tooling', toolingOf(i), false, 'tooling'),
            rollup('JA3', i.ja3_hashes, true, 'ja3'),
            rollup('HASSH', i.hassh_hashes, true, 'hassh'),
            rollup('Payload hashes', i.payload_hashes, true, 'payloads'),
            rollup('C2 endpoints', i.c2_endpoints, true, 'c2'),
            rollup('ASNs', list(i.asns).map((a) => `AS${vis(a)}`), false, 'asns'),
            rollup('Deckies', i.deckies, false, 'deckies'),
            rollup('Keystroke rhythm (SimHash)', i.kd_digraph_simhash ? [i.kd_digraph_simhash] : [], true, 'simhash'),
            list(i.merged_from).length ? h('div', { class: 'rollup', 'data-rollup': 'merged' },
              h('h3', null, 'Merged from ', h('small', null, num(list(i.merged_from).length))),
              h('ul', null, list(i.merged_from).map((u) => h('li', null, link('identity', u, vis(u)))))) : null)),
        h('section', { class: 'card' },
          h('h2', null, 'Members ', h('small', null, `${plural(members.length, 'observation')}, each with the strongest tie that holds it here`)),
          table('identity-members', ['Observation', 'IP', 'ASN', 'First seen', 'Last seen', 'Why it belongs'], rows)),
        overview && overview.control === true ? decisionCard(members.length ? members[0].uuid : '', state) : null),
    };
  }

  // Operator decisions (POST /api/control), offered only when the server
  // allows them (http.allow_control). The token stays in this tab's
  // session storage; the daemon records the decision with the caller's
  // address and its reply is shown as it came.
  const TOKEN_KEY = 'clusterd-control-token';
  function decisionCard(first, state) {
    const action = h('select', { id: 'decision-action', 'aria-label': 'decision' },
      ['link', 'separate', 'forget'].map((a) => h('option', { value: a }, a)));
    const obs = (id, value) => h('input', { id, value: value || null, size: 36, spellcheck: 'false',
      placeholder: 'observation: uuid, prefix or IP', 'aria-label': 'observation' });
    const a = obs('decision-a', first), b = obs('decision-b', '');
    const token = h('input', { id: 'decision-token', type: 'password', autocomplete: 'off', size: 20,
      placeholder: 'http.token', 'aria-label': 'token' });
    try { token.value = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_) { /* storage disabled */ }
    const result = h('p', { id: 'decision-result', class: 'muted' },
      'link: one identity · separate: never one identity · forget: drop a decision. Decisions win over evidence.');
    // The last answer survives the page's live refresh (which the decision
    // itself causes).
    const show = (st, text) => {
      result.dataset.state = st;
      result.textContent = text;
      if (state) state.decision = { st, text };
    };
    if (state && state.decision) { result.dataset.state = state.decision.st; result.textContent = state.decision.text; }
    const form = h('form', {
      id: 'decision', class: 'decision',
      onsubmit: async (ev) => {
        ev.preventDefault();
        try { sessionStorage.setItem(TOKEN_KEY, token.value); } catch (_) { /* storage disabled */ }
        show('sending', 'sending…');
        let res, body = null;
        try {
          res = await fetch('/api/control', {
            method: 'POST', cache: 'no-store',
            headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${token.value}` },
            body: JSON.stringify({ action: action.value, observation_uuids: [a.value.trim(), b.value.trim()] }),
          });
          try { body = await res.json(); } catch (_) { body = null; }
        } catch (e) {
          show('error', `the daemon did not answer (${e.message})`);
          return;
        }
        if (res.ok && body && body.ok === true) {
          show('ok', `${action.value} applied; the identities change with the next pass.`);
        } else {
          const why = body && typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
          show('error', `refused (${res.status}): ${vis(why)}`);
        }
      },
    }, action, a, h('span', { class: 'muted' }, 'and'), b, token, h('button', { type: 'submit' }, 'Send'));
    return h('section', { class: 'card', id: 'identity-decision' }, h('h2', null, 'Operator decision'), form, result);
  }
  function whyCell(m, detailRow, detail) {
    const w = m.why;
    if (!w) return h('span', { class: 'muted' }, 'the only member, or joined by an operator decision');
    const sigs = list(w.signals).slice().sort((x, y) => (Number(y.weight) || 0) - (Number(x.weight) || 0));
    return h('div', null,
      h('div', null, 'tied to ', link('observation', w.partner_uuid), ` with weight ${wt(w.weight)} `,
        h('button', { type: 'button', class: 'small', onclick: () => toggleExplain(detailRow, detail, m.uuid, w.partner_uuid) }, 'explain')),
      sigs.map((sg) => h('div', { class: 'sigline' }, h('b', null, clip(sg.signal, 30)), ` ${wt(sg.weight)} `, chips(sg.values, 2, 'chip mono'))));
  }

  // --------------------------------------------------------- observation

  async function viewObservation(route) {
    const data = await api(`/api/observations/${encodeURIComponent(route.uuid)}`);
    const o = data.observation || {};
    const sessions = list(o.sessions).slice().sort((x, y) => {
      const a = parseTime(x.started_at), b = parseTime(y.started_at);
      return (a ? a.getTime() : 0) - (b ? b.getTime() : 0);
    });
    const watched = new Set([o.uuid, route.uuid, o.identity_uuid, o.campaign_uuid]);
    const field = (label, value) => h('tr', null, h('th', null, label), h('td', null, value));
    const values = (xs, max = 80) => (list(xs).length ? h('ul', { class: 'plain' }, list(xs).map((x) => h('li', null, code(x, max)))) : h('span', { class: 'none' }, '–'));
    const sessionCard = (x) => h('div', { class: 'session card inner', 'data-session': vis(x.session_id) },
      h('h3', null, code(x.session_id, 48), ' on ', h('b', null, val(x.decky_id, 40)), ' ',
        h('small', null, `${iso(x.started_at)} → ${iso(x.ended_at)} (${duration(x.started_at, x.ended_at)})`)),
      h('table', { class: 'kv' }, h('tbody', null,
        field('Phase', h('span', null, phaseBadge(x.first_phase), x.last_phase && x.last_phase !== x.first_phase ? [' → ', phaseBadge(x.last_phase)] : null,
          ' ', h('span', { class: `source ${x.phase_source === 'inferred' ? 'inferred' : 'sensor'}` }, x.phase_source ? vis(x.phase_source) : 'no phase'))),
        field('Commands', list(x.commands).length
          ? h('ol', { class: 'commands' }, list(x.commands).map((c) => h('li', null, code(c, 200)))) : h('span', { class: 'none' }, '–')),
        field('Credentials', list(x.credentials).length
          ? h('table', { class: 'grid creds' }, h('thead', null, h('tr', null, h('th', null, 'user'), h('th', null, 'password'))),
            h('tbody', null, list(x.credentials).map((pair) => h('tr', null, h('td', null, code(list(pair)[0], 60)), h('td', null, code(list(pair)[1], 60))))))
          : h('span', { class: 'none' }, '–')),
        field('Payload hashes', values(x.payload_hashes)),
        field('C2 endpoints', values(x.c2_endpoints)),
        field('Auth key', code(x.auth_key, 80)),
        field('Planted keys', values(x.planted_keys)))));
    return {
      title: `Observation ${clip(o.ip || o.uuid, 40)}`,
      crumbs: [o.campaign_uuid ? link('campaign', o.campaign_uuid) : null, o.identity_uuid ? link('identity', o.identity_uuid) : null,
        h('span', { class: 'mono' }, short(o.uuid))].filter(Boolean),
      watch: (uuids) => uuids.some((u) => watched.has(u)),
      node: h('div', null,
        h('section', { class: 'card head' },
          h('h1', null, 'Observation ', h('span', { class: 'mono', id: 'observation-uuid' }, clip(o.uuid, 80))),
          h('div', { class: 'strip' },
            stat('IP', code(o.ip, 40)),
            stat('ASN', o.asn === null || o.asn === undefined ? h('span', { class: 'none' }, '–') : `AS${clip(o.asn, 12)}`),
            stat('First seen', timeCell(o.first_seen)), stat('Last seen', timeCell(o.last_seen)),
            stat('Identity', o.identity_uuid ? link('identity', o.identity_uuid) : h('span', { class: 'none' }, 'none yet')),
            stat('Campaign', o.campaign_uuid ? link('campaign', o.campaign_uuid) : h('span', { class: 'none' }, 'none')))),
        h('section', { class: 'card' },
          h('h2', null, 'Fingerprints ', h('small', null, num(list(o.fingerprints).length))),
          list(o.fingerprints).length ? table('observation-fingerprints', ['Kind', 'Value'],
            list(o.fingerprints).map((f) => h('tr', { 'data-kind': vis(f.kind) }, h('td', null, val(f.kind, 30)),
              h('td', null, code(f.value, 120), ' ', h('a', { href: `/search?${q({ q: f.value })}`, 'data-nav': true, class: 'small' }, 'who else?')))))
            : h('p', { class: 'none' }, 'none recorded')),
        h('section', { class: 'card', id: 'observation-sessions' },
          h('h2', null, 'Sessions ', h('small', null, num(sessions.length))),
          sessions.length ? sessions.map(sessionCard) : h('p', { class: 'none' }, 'none recorded'))),
    };
  }
  function phaseBadge(p) {
    if (!p) return h('span', { class: 'none' }, 'unknown');
    return h('span', { class: 'phase', style: { 'border-color': PHASE_COLOUR.get(p) || UNKNOWN_PHASE } },
      h('i', { style: { 'background': PHASE_COLOUR.get(p) || UNKNOWN_PHASE } }), clip(p, 30).replace(/_/g, ' '));
  }

  // --------------------------------------------------------------- search

  async function viewSearch(route) {
    const query = route.q.trim();
    if (!query) {
      return { title: 'Search', crumbs: [h('span', null, 'search')],
        node: h('section', { class: 'card' }, h('h1', null, 'Search'),
          h('p', { class: 'muted' }, 'Type an IP address, a uuid or the first characters of one, a fingerprint value (JA3, HASSH, key, payload hash, C2) or an ASN in the box above.')) };
    }
    const data = await api(`/api/search?${q({ q: query })}`);
    const matches = list(data.matches);
    if (matches.length === 1 && PATHS[matches[0].kind]) {
      navigate(pathFor(matches[0].kind, matches[0].uuid), true);
      throw Object.assign(new Error('redirected'), { redirected: true });
    }
    const order = { campaign: 0, identity: 1, observation: 2 };
    matches.sort((x, y) => (order[x.kind] ?? 9) - (order[y.kind] ?? 9));
    return {
      title: `Search ${clip(query, 30)}`,
      crumbs: [h('span', null, 'search')],
      node: h('section', { class: 'card' },
        h('h1', null, 'Search ', h('span', { class: 'mono' }, clip(query, 80))),
        matches.length
          ? h('ul', { id: 'search-results', class: 'results' }, matches.map((m) => h('li', { 'data-uuid': vis(m.uuid), 'data-kind': vis(m.kind) },
            h('span', { class: `kind ${PATHS[m.kind] ? m.kind : ''}` }, clip(m.kind, 12)),
            PATHS[m.kind] ? link(m.kind, m.uuid, vis(m.uuid)) : code(m.uuid, 60),
            ' ', h('span', { class: 'muted' }, clip(m.label, 120)))))
          : h('p', { id: 'search-empty', class: 'muted' }, 'Nothing matches. An IP must be complete; a uuid prefix needs at least a few characters.')),
    };
  }

  document.getElementById('search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = document.getElementById('search-q').value.trim();
    if (value) navigate(`/search?${q({ q: value })}`);
  });

  // ----------------------------------------------------------------- live

  const FEED_MAX = 80;
  let feedCount = 0;
  let refreshTimer = null, refreshFirst = 0;
  const ROLE_KIND = {
    identity_uuid: 'identity', campaign_uuid: 'campaign', observation_uuid: 'observation',
    prior_identity_uuid: 'identity', prior_campaign_uuid: 'campaign',
    former_winner_uuid: null, winner_uuid: null, loser_uuid: null, resurrected_uuid: null,
  };

  function setLive(state, text) {
    document.body.dataset.live = state;
    document.querySelector('#live-state span').textContent = text || state;
  }

  function uuidsIn(payload) {
    const out = [];
    const walk = (v, depth) => {
      if (depth > 3) return;
      if (typeof v === 'string') out.push(v);
      else if (Array.isArray(v)) v.forEach((x) => walk(x, depth + 1));
      else if (v && typeof v === 'object') Object.values(v).forEach((x) => walk(x, depth + 1));
    };
    walk(payload, 0);
    return out;
  }

  function feedItem(ev) {
    const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
    const streamKind = ev.stream === 'campaign' ? 'campaign' : 'identity';
    const refs = [];
    for (const [role, kindHint] of Object.entries(ROLE_KIND)) {
      if (typeof p[role] !== 'string' || !p[role]) continue;
      refs.push(h('span', { class: 'ref' }, h('small', null, role.replace(/_uuid$/, '').replace(/_/g, ' ')), ' ', link(kindHint || streamKind, p[role])));
    }
    for (const [role, kind] of [['observation_uuids', 'observation'], ['identity_uuids', 'identity']]) {
      const xs = list(p[role]);
      if (xs.length) refs.push(h('span', { class: 'ref' }, h('small', null, plural(xs.length, kind === 'identity' ? 'identity' : 'observation', kind === 'identity' ? 'identities' : null))));
    }
    const conf = p.confidence_after ?? p.confidence;
    return h('li', { 'data-topic': vis(ev.topic), 'data-stream': vis(ev.stream), 'data-event-id': vis(ev.event_id) },
      h('div', { class: 'fhead' }, h('span', { class: `topic ${streamKind}` }, clip(ev.topic, 40)),
        h('time', { class: 'ts' }, iso(ev.ts).replace(/^\d{4}-\d\d-\d\dT/, ''))),
      h('div', { class: 'frefs' }, refs, conf !== undefined && conf !== null ? h('span', { class: 'ref' }, h('small', null, 'confidence'), ' ', wt(conf)) : null));
  }

  function onEvent(msg) {
    let ev;
    try { ev = JSON.parse(msg.data); } catch (_) { return; }
    if (!ev || typeof ev !== 'object') return;
    const feed = document.getElementById('live-feed');
    feed.prepend(feedItem(ev));
    while (feed.children.length > FEED_MAX) feed.lastChild.remove();
    feedCount += 1;
    document.getElementById('live-count').textContent = plural(feedCount, 'event');
    document.getElementById('live-empty').hidden = true;
    const uuids = uuidsIn(ev.payload);
    if (current.watch(uuids)) scheduleRefresh();
  }

  // Trailing debounce of one second, but never more than four seconds late.
  function scheduleRefresh() {
    const now = Date.now();
    if (!refreshTimer) refreshFirst = now;
    clearTimeout(refreshTimer);
    const wait = Math.max(0, Math.min(1000, refreshFirst + 4000 - now));
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      if (document.getElementById('view').dataset.state === 'ready') render(true);
    }, wait);
  }

  let source = null, retry = null;
  function connect() {
    if (typeof EventSource === 'undefined') { setLive('unsupported', 'no live updates in this browser'); return; }
    clearTimeout(retry);
    setLive('connecting', 'connecting');
    source = new EventSource('/api/events');
    source.onopen = () => setLive('open', 'live');
    source.onmessage = onEvent;
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setLive('closed', 'disconnected, retrying');
        source.close();
        retry = setTimeout(connect, 5000);
      } else {
        setLive('connecting', 'reconnecting');
      }
    };
  }

  // A browser holds at most six connections to one host, and a page it
  // leaves (for another page, or into its back-forward cache) keeps its
  // event stream open unless told: after a few page loads every connection
  // was a stale stream and the next request waited forever ("Loading…").
  // The stream is closed when the page is hidden and opened again when it
  // is shown from that cache.
  window.addEventListener('pagehide', () => {
    clearTimeout(retry);
    if (source) { source.close(); source = null; }
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && !source) { connect(); render(true); }
  });

  render(false);
  connect();
})();
