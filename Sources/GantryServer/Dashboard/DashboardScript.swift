/// The dashboard's script: plain JavaScript (no build step, no libraries), in parts joined
/// into one file inside a function scope. Every piece of data reaches the DOM through
/// `textContent`, `createElement` or SVG attributes, never as markup.
enum DashboardScript {
    static let source = "(function () {\n'use strict';\n" + core + charts + pages + workloadPage + "\n})();\n"

    /// Tokens, the API client, DOM helpers, error messages, polling, the hash router.
    static let core = #"""
const TOKEN_KEY = 'gantry.token';
const POLL_MS = 2000;
const LOG_CAP = 256 * 1024;
const main = document.getElementById('main');
const state = { whoami: null, cleanups: [], route: null };

function getToken() { try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } }
function setToken(t) {
  try { if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }
}

// ---- DOM helpers (text only; never markup from data) ----
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  add(e, kids);
  return e;
}
const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  add(e, kids);
  return e;
}
function setAttrs(e, attrs) {
  if (!attrs) return;
  for (const k of Object.keys(attrs)) {
    const v = attrs[k];
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.setAttribute('class', String(v));
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') { for (const p of Object.keys(v)) e.style[p] = v[p]; }
    else e.setAttribute(k, v === true ? '' : String(v));
  }
}
function add(e, kids) {
  for (const k of kids) {
    if (k === null || k === undefined || k === false) continue;
    if (Array.isArray(k)) add(e, k);
    else if (k instanceof Node) e.appendChild(k);
    else e.appendChild(document.createTextNode(String(k)));
  }
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
function replace(e, ...kids) { clear(e); add(e, kids); return e; }

// ---- the API ----
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}
function authHeaders(extra) {
  const h = Object.assign({ Accept: 'application/json' }, extra || {});
  const t = getToken();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}
async function errorFrom(r) {
  let text = '';
  try { text = await r.text(); } catch (e) { /* body lost */ }
  let code = 'HTTP' + r.status, message = text.trim() || r.statusText || ('HTTP ' + r.status);
  try {
    const b = JSON.parse(text);
    if (b && b.error) { code = b.error.code || code; message = b.error.message || message; }
  } catch (e) { /* not JSON */ }
  return new ApiError(r.status, code, message);
}
async function request(path, opts) {
  opts = opts || {};
  const init = { method: opts.method || 'GET', headers: authHeaders(opts.headers), cache: 'no-store', signal: opts.signal };
  if (opts.json !== undefined) { init.body = JSON.stringify(opts.json); init.headers['Content-Type'] = 'application/json'; }
  let r;
  try { r = await fetch(path, init); }
  catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NetworkError', 'Cannot reach the Gantry daemon (' + (e && e.message ? e.message : 'network error') + ').');
  }
  if (!r.ok) throw await errorFrom(r);
  return r;
}
async function api(path, opts) {
  const r = await request(path, opts);
  const text = await r.text();
  if (!text) return null;
  try { return JSON.parse(text); }
  catch (e) { throw new ApiError(r.status, 'BadResponse', 'The daemon answered ' + path + ' with something that is not JSON.'); }
}
const enc = encodeURIComponent;
function wlPath(ns, name) { return '/api/v1/namespaces/' + enc(ns) + '/workloads/' + enc(name); }
function itemsOf(body) { return body && Array.isArray(body.items) ? body.items : (Array.isArray(body) ? body : []); }

// ---- messages for failures ----
function errorBox(err, what) {
  if (err && err.status === 401) {
    showLogin(getToken() ? 'The daemon did not accept your token. Paste another one.' : 'The daemon needs a token to show ' + what + '.');
    return el('div', { class: 'message denied' },
      el('h2', { text: 'Sign-in needed' }),
      el('p', { text: (getToken() ? 'Your token was refused' : 'No token was given') + ' (' + err.message + ').' }),
      el('button', { type: 'button', onclick: () => showLogin('') }, 'Enter a token'));
  }
  if (err && err.status === 403) {
    const who = state.whoami ? state.whoami.user + ' (' + state.whoami.role + ')' : 'your token';
    return el('div', { class: 'message denied' },
      el('h2', { text: 'Not allowed' }),
      el('p', { text: 'The role or namespaces of ' + who + ' cannot see ' + what + '.' }),
      el('p', { class: 'muted', text: err.message }));
  }
  if (err && err.status === 404) {
    return el('div', { class: 'message' }, el('h2', { text: 'Not found' }),
      el('p', { text: 'There is no ' + what + '.' }), el('p', { class: 'muted', text: err.message }));
  }
  if (err && err.status === 0) {
    return el('div', { class: 'message error' }, el('h2', { text: 'Daemon unreachable' }),
      el('p', { text: err.message + ' Retrying while this page is open.' }));
  }
  const status = err && err.status ? ' (' + err.status + (err.code ? ' ' + err.code : '') + ')' : '';
  return el('div', { class: 'message error' }, el('h2', { text: 'Could not load ' + what + status }),
    el('p', { text: err && err.message ? err.message : String(err) }));
}
function banner(text, isError) {
  const b = document.getElementById('banner');
  if (!text) { b.hidden = true; clear(b); return; }
  b.className = 'banner' + (isError ? ' error' : '');
  replace(b, text);
  b.hidden = false;
}

// ---- formatting ----
function fmtTime(s) {
  if (!s) return '';
  const d = new Date(typeof s === 'number' ? s * 1000 : s);
  if (isNaN(d.getTime())) return String(s);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
function ago(s) {
  if (!s) return '';
  const t = new Date(s).getTime();
  if (isNaN(t)) return '';
  let d = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (d < 60) return d + 's';
  if (d < 3600) return Math.floor(d / 60) + 'm';
  if (d < 86400) return Math.floor(d / 3600) + 'h' + (Math.floor(d / 60) % 60 ? Math.floor(d / 60) % 60 + 'm' : '');
  return Math.floor(d / 86400) + 'd' + (Math.floor(d / 3600) % 24 ? Math.floor(d / 3600) % 24 + 'h' : '');
}
// The first of `times` that is a real time (a default zero time reads as 1970: skipped).
function firstTime(...times) { return times.find((t) => t && new Date(t).getTime() > 0) || ''; }
function timeCell(s) { return s ? el('span', { title: fmtTime(s) }, ago(s) + ' ago') : ''; }
function badge(text, prefix) { return text ? el('span', { class: 'badge ' + (prefix || 'phase') + '-' + String(text).replace(/[^A-Za-z]/g, '') }, String(text)) : ''; }
const UNITS = { Ki: 1024, Mi: 1048576, Gi: 1073741824, Ti: 1099511627776, Pi: 1125899906842624, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, m: 1e-3 };
function quantity(v) {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return v;
  const m = /^\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]{0,2})\s*$/.exec(String(v));
  if (!m) return null;
  const n = parseFloat(m[1]);
  if (!m[2]) return n;
  return UNITS[m[2]] ? n * UNITS[m[2]] : null;
}
function fmtQuantity(res, n) {
  if (n === null || n === undefined) return '–';
  if (res === 'memory' || /storage/.test(res)) {
    const units = [['Ti', 1099511627776], ['Gi', 1073741824], ['Mi', 1048576], ['Ki', 1024]];
    for (const [u, f] of units) if (Math.abs(n) >= f) return trim(n / f) + u;
    return trim(n);
  }
  return trim(n);
}
function trim(n) { return Math.abs(n) >= 100 || Number.isInteger(n) ? String(Math.round(n)) : String(Math.round(n * 100) / 100); }
function colourOf(text) {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
  return 'hsl(' + (h % 360) + ', 62%, ' + (40 + (h >> 9) % 14) + '%)';
}
function priorityText(p) {
  if (p === null || p === undefined || p === '') return 'normal';
  return String(p);
}

// ---- polling that pauses while the tab is hidden ----
function poll(fn, ms) {
  let timer = null, stopped = false, running = false;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (document.hidden) { updateLive(); return; }
    running = true;
    let again = true;
    try { again = (await fn()) !== false; } catch (e) { /* fn shows its own errors */ }
    running = false;
    if (!again) { stopped = true; state.polling = false; updateLive(); return; }
    if (!stopped && !document.hidden) timer = setTimeout(tick, ms);
  };
  const onVisible = () => {
    updateLive();
    if (!document.hidden && !timer && !running && !stopped) tick();
  };
  document.addEventListener('visibilitychange', onVisible);
  onCleanup(() => { stopped = true; if (timer) clearTimeout(timer); document.removeEventListener('visibilitychange', onVisible); });
  state.polling = true;
  updateLive();
  tick();
}
function updateLive() {
  const l = document.getElementById('live');
  if (!state.polling) { l.textContent = ''; return; }
  l.textContent = document.hidden ? '❚❚ paused' : '● live';
  l.className = 'live' + (document.hidden ? ' paused' : '');
}
function onCleanup(f) { state.cleanups.push(f); }
// Whether polling should go on after this failure (not for 401/403/404: nothing will change by itself).
function transient(e) { return !(e && (e.status === 401 || e.status === 403 || e.status === 404)); }

// ---- the token box ----
function showLogin(reason) {
  const box = document.getElementById('login');
  if (!box.hidden) return;
  document.getElementById('login-reason').textContent = reason ||
    'Paste the bearer token from the daemon\'s tokens file. It is kept in this browser\'s local storage.';
  document.getElementById('login-token').value = '';
  box.hidden = false;
  document.getElementById('login-token').focus();
}
function hideLogin() { document.getElementById('login').hidden = true; }
function setupLogin() {
  document.getElementById('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(document.getElementById('login-token').value.trim());
    hideLogin();
    refreshWhoami().then(route);
  });
  document.getElementById('login-none').addEventListener('click', () => { setToken(''); hideLogin(); refreshWhoami().then(route); });
  document.getElementById('login-cancel').addEventListener('click', hideLogin);
  document.getElementById('token-button').addEventListener('click', () => showLogin(''));
}
async function refreshWhoami() {
  const who = document.getElementById('who');
  try {
    state.whoami = await api('/api/v1/whoami');
    const w = state.whoami || {};
    const ns = Array.isArray(w.namespaces) ? ' · ' + w.namespaces.join(', ') : '';
    replace(who, (w.user || '?') + ' (' + (w.role || '?') + ns + ')');
    who.title = 'Signed in as ' + (w.user || '?') + ', role ' + (w.role || '?') + (w.mode ? ', ' + w.mode + ' mode' : '');
  } catch (e) {
    state.whoami = null;
    replace(who, e.status === 401 ? 'not signed in' : '');
  }
}
function canWrite(ns) {
  const w = state.whoami;
  if (!w) return { ok: false, why: 'Sign in with a token to change workloads.' };
  if (w.role === 'viewer') return { ok: false, why: 'Your role (viewer) can only read; stop, resume, clone and delete need editor or admin.' };
  if (Array.isArray(w.namespaces) && ns && !w.namespaces.includes(ns) && !w.namespaces.includes('*'))
    return { ok: false, why: 'Your token may not act in namespace ' + ns + '.' };
  return { ok: true, why: '' };
}

// ---- the hash router ----
function parseHash() {
  let h = location.hash.replace(/^#/, '');
  const q = h.indexOf('?');
  const path = q >= 0 ? h.slice(0, q) : h;
  const params = new URLSearchParams(q >= 0 ? h.slice(q + 1) : '');
  const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
  return { parts, params, path };
}
function takeTokenFromURL() {
  // A token in the fragment (#/queues?token=...) or the query (?token=...) is stored and
  // removed from the address bar, so it is not left in history or bookmarks.
  const h = parseHash();
  const search = new URLSearchParams(location.search);
  const t = h.params.get('token') || search.get('token');
  if (t === null) return;
  setToken(t);
  h.params.delete('token');
  search.delete('token');
  const qs = h.params.toString();
  const s = search.toString();
  history.replaceState(null, '', location.pathname + (s ? '?' + s : '') + '#' + (h.path || '/queues') + (qs ? '?' + qs : ''));
}
function setHashQuietly(path, params) {
  const qs = params.toString();
  history.replaceState(null, '', '#' + path + (qs ? '?' + qs : ''));
}
function route() {
  for (const f of state.cleanups.splice(0)) { try { f(); } catch (e) { /* ignore */ } }
  state.polling = false;
  updateLive();
  banner('');
  const h = parseHash();
  const page = h.parts[0] || 'queues';
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.nav === page);
  clear(main);
  if (page === 'queues') queuesPage();
  else if (page === 'workloads' && h.parts.length >= 3) workloadPage(h.parts[1], h.parts[2]);
  else if (page === 'workloads') workloadsPage(h.params);
  else if (page === 'nodes') nodesPage();
  else add(main, [el('div', { class: 'message' }, el('h2', { text: 'Not found' }), el('p', {}, 'No page ' + location.hash + '. ', el('a', { href: '#/queues' }, 'Go to the queues.')))]);
}
function start() {
  takeTokenFromURL();
  setupLogin();
  window.addEventListener('hashchange', route);
  refreshWhoami().then(route);
}

"""#
}
