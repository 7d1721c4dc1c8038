extension DashboardScript {
    /// The queues tree, the workloads list and the nodes page.
    static let pages = #"""
// ---- queues ----
const RESOURCE_ORDER = ['gpu', 'cpu', 'memory'];
function resourceNames(...maps) {
  const names = new Set();
  for (const m of maps) if (m && typeof m === 'object') for (const k of Object.keys(m)) names.add(k);
  return [...names].sort((a, b) => {
    const ia = RESOURCE_ORDER.indexOf(a), ib = RESOURCE_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
}
function quotaLine(res, deserved, allocated, borrowed, capability, guarantee) {
  const d = quantity(deserved[res]) || 0, a = quantity(allocated[res]) || 0;
  const b = Math.min(a, quantity(borrowed[res]) || 0);
  const cap = quantity(capability[res]);
  const scale = Math.max(d, a, cap === null ? 0 : cap, 1e-9);
  const pct = (v) => Math.max(0, Math.min(100, v / scale * 100)) + '%';
  const bar = el('div', { class: 'bar' });
  if (cap === null) bar.appendChild(el('div', { class: 'capability', style: { left: '100%' } }));
  else if (cap < scale) bar.appendChild(el('div', { class: 'capability', style: { left: pct(cap) } }));
  bar.appendChild(el('div', { class: 'used', style: { width: pct(a - b) } }));
  if (b > 0) bar.appendChild(el('div', { class: 'borrowed', style: { left: pct(a - b), width: pct(b) } }));
  if (d > 0) bar.appendChild(el('div', { class: 'deserved', style: { left: 'calc(' + pct(d) + ' - 1px)' } }));
  const g = quantity(guarantee[res]);
  const f = (v) => fmtQuantity(res, v);
  const title = res + ': allocated ' + f(a) + ', deserved ' + f(d) + ', borrowed ' + f(b) +
    ', capability ' + (cap === null ? 'unlimited' : f(cap)) + (g !== null ? ', guarantee ' + f(g) : '');
  const nums = el('span', { class: 'nums' }, f(a) + ' / ' + f(d), b > 0 ? ' (+' + f(b) + ' borrowed)' : '', ' · cap ' + (cap === null ? '∞' : f(cap)));
  return el('div', { class: 'quota-line', title: title }, el('span', { class: 'res', text: res }), bar, nums);
}
function queueRow(q, depth, pendingOpen, toggle) {
  const m = q.metadata || {}, spec = q.spec || {}, st = q.status || {}, use = q.usage || {};
  const deserved = spec.deserved || st.deserved || {};
  const allocated = use.allocated || st.allocated || {};
  const borrowed = use.borrowed || st.borrowed || {};
  const capability = spec.capability || {};
  const guarantee = spec.guarantee || {};
  const quota = el('td', { class: 'quota' });
  const names = resourceNames(deserved, allocated, capability);
  if (names.length === 0) add(quota, [el('span', { class: 'muted', text: 'no quota' })]);
  for (const r of names) quota.appendChild(quotaLine(r, deserved, allocated, borrowed, capability, guarantee));
  const pending = use.pending !== undefined ? use.pending : st.pending;
  const name = el('td', { class: 'name' });
  if (depth > 0) name.appendChild(el('span', { class: 'tree-pad', style: { marginLeft: (depth - 1) * 18 + 'px' } }));
  add(name, [m.name || '?']);
  if (spec.description) add(name, [el('div', { class: 'muted small', text: spec.description })]);
  const pendingCell = el('td', { class: 'num' });
  if (pending > 0) pendingCell.appendChild(el('a', { href: '#', title: 'Show the pending order', onclick: (ev) => { ev.preventDefault(); toggle(m.name); } }, String(pending)));
  else pendingCell.textContent = String(pending || 0);
  return el('tr', { 'data-queue': m.name },
    name,
    el('td', {}, badge(st.state || spec.state || 'Open')),
    el('td', { text: spec.resourcePool || '' }),
    pendingCell,
    el('td', { class: 'num', text: String((use.admitted !== undefined ? use.admitted : st.admitted) || 0) }),
    el('td', { class: 'num', text: String((use.running !== undefined ? use.running : st.running) || 0) }),
    quota,
    el('td', {}, el('a', { href: '#/workloads?queue=' + enc(m.name || '') }, 'workloads')));
}
function pendingRow(name, span) {
  const cell = el('td', { colspan: span }, el('span', { class: 'muted', text: 'Loading the pending order…' }));
  api('/api/v1/queues/' + enc(name) + '/pending').then((body) => {
    const items = itemsOf(body);
    if (!items.length) { replace(cell, el('span', { class: 'muted', text: 'Nothing pending.' })); return; }
    replace(cell, el('table', {}, el('thead', {}, el('tr', {}, ['#', 'Workload', 'Priority', 'GPUs', 'Reason'].map((h) => el('th', { text: h })))),
      el('tbody', {}, items.map((p) => {
        const [ns, n] = String(p.workload || '').split('/');
        return el('tr', {}, el('td', { class: 'num', text: String(p.position !== undefined ? p.position : '') }),
          el('td', {}, n ? el('a', { href: '#/workloads/' + enc(ns) + '/' + enc(n) }, p.workload) : String(p.workload || '')),
          el('td', { text: priorityText(p.priority) }), el('td', { class: 'num', text: String(p.gpus !== undefined ? p.gpus : '') }),
          el('td', { class: 'wrap', text: p.reason || '' }));
      }))));
  }).catch((e) => replace(cell, errorBox(e, 'the pending order of ' + name)));
  return el('tr', { class: 'pending-row' }, cell);
}
function queuesPage() {
  const body = el('div', {}, el('p', { class: 'muted', text: 'Loading queues…' }));
  const open = new Set();
  let last = [];
  const render = () => replace(body, queueTable(last, open, (n) => { if (open.has(n)) open.delete(n); else open.add(n); render(); }));
  add(main, [el('h1', {}, 'Queues'),
    el('div', { class: 'legend' },
      el('span', {}, el('span', { class: 'swatch used' }), 'allocated within deserved'),
      el('span', {}, el('span', { class: 'swatch borrowed' }), 'borrowed from the cohort'),
      el('span', {}, el('span', { class: 'swatch deserved' }), 'deserved'),
      el('span', {}, el('span', { class: 'swatch capability' }), 'above capability'),
      el('span', { text: 'numbers: allocated / deserved · cap = capability' })),
    body]);
  poll(async () => {
    try { last = itemsOf(await api('/api/v1/queues')); render(); return true; }
    catch (e) { replace(body, errorBox(e, 'the queues')); return transient(e); }
  }, POLL_MS);
}
function queueTable(queues, open, toggle) {
  if (!queues.length) return el('div', { class: 'message', text: 'No queues are declared.' });
  const byName = new Map();
  for (const q of queues) if (q && q.metadata && q.metadata.name) byName.set(q.metadata.name, q);
  const kids = new Map(), roots = [];
  const sorted = [...byName.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const q of sorted) {
    const p = q.spec && q.spec.parent;
    if (p && p !== q.metadata.name && byName.has(p)) { if (!kids.has(p)) kids.set(p, []); kids.get(p).push(q); }
    else roots.push(q);
  }
  const heads = ['Queue', 'State', 'Pool', 'Pending', 'Admitted', 'Running', 'Quota (allocated / deserved)', ''];
  const tbody = el('tbody');
  const seen = new Set();
  const visit = (q, depth) => {
    const n = q.metadata.name;
    if (seen.has(n)) return;
    seen.add(n);
    tbody.appendChild(queueRow(q, depth, open.has(n), toggle));
    if (open.has(n)) tbody.appendChild(pendingRow(n, heads.length));
    for (const c of kids.get(n) || []) visit(c, depth + 1);
  };
  for (const r of roots) visit(r, 0);
  for (const q of sorted) visit(q, 0); // a parent cycle: still shown
  return el('div', { class: 'table-wrap' }, el('table', { class: 'queue-table' },
    el('thead', {}, el('tr', {}, heads.map((h, i) => el('th', { class: i >= 3 && i <= 5 ? 'num' : null, text: h })))), tbody));
}

// ---- workloads ----
const WL_FILTERS = [['phase', 'Phase'], ['queue', 'Queue'], ['namespace', 'Namespace'], ['type', 'Type']];
const WL_COLUMNS = [
  ['name', 'Name', 'name'], ['namespace', 'Namespace', null], ['queue', 'Queue', 'queue'], ['type', 'Type', 'type'],
  ['phase', 'Phase', 'phase'], ['priority', 'Priority', 'priority'], ['gpus', 'GPUs', 'gpus'], ['replicas', 'Replicas', null],
  ['user', 'User', null], ['created', 'Created', 'createdAt'], ['started', 'Started', 'startedAt'], ['completed', 'Finished', 'completedAt']];
function listValues(meta, key) {
  const all = { phase: 'allPhases', type: 'allTypes' }[key];
  const v = meta && ((all && meta[all]) || meta[key + 's'] || meta[key]);
  if (!Array.isArray(v)) return [];
  return v.map((x) => (x && typeof x === 'object') ? (x.name || x.value || x.key) : x).filter((x) => x !== undefined && x !== null && x !== '').map(String);
}
function clean(v) { return String(v || '').replace(/,/g, ' ').trim(); }
function workloadQuery(p) {
  // The list API's own filters: phase, queue, namespace, type, user (exact; a comma would
  // make a list, so it is dropped) and name (contains).
  const q = new URLSearchParams();
  for (const k of ['phase', 'queue', 'namespace', 'type', 'user', 'name']) if (clean(p.get(k))) q.set(k, clean(p.get(k)));
  q.set('sortBy', p.get('sortBy') || 'createdAt');
  q.set('sortOrder', p.get('sortOrder') === 'asc' ? 'asc' : 'desc');
  q.set('offset', String(Math.max(0, parseInt(p.get('offset') || '0', 10) || 0)));
  q.set('limit', String(Math.min(1000, Math.max(1, parseInt(p.get('limit') || '50', 10) || 50))));
  return q;
}
function workloadsPage(params) {
  const p = new URLSearchParams(params);
  const filters = el('form', { class: 'filters panel' });
  const table = el('div', {}, el('p', { class: 'muted', text: 'Loading workloads…' }));
  const pager = el('div', { class: 'pager' });
  add(main, [el('h1', {}, 'Workloads'), filters, table, pager]);
  const selects = {};
  const changed = () => { p.set('offset', '0'); setHashQuietly('/workloads', p); refresh(); };
  for (const [k, label] of WL_FILTERS) {
    const s = el('select', { name: k, onchange: () => { if (s.value) p.set(k, s.value); else p.delete(k); changed(); } }, el('option', { value: '' }, 'any'));
    if (p.get(k)) s.appendChild(el('option', { value: p.get(k) }, p.get(k)));
    s.value = p.get(k) || '';
    selects[k] = s;
    filters.appendChild(el('label', {}, label, s));
  }
  let typing = null;
  const textFilter = (k, label, hint) => {
    const i = el('input', { type: 'search', name: k, value: p.get(k) || '', placeholder: hint, size: 16,
      oninput: () => { clearTimeout(typing); typing = setTimeout(() => { if (i.value.trim()) p.set(k, i.value.trim()); else p.delete(k); changed(); }, 300); } });
    filters.appendChild(el('label', {}, label, i));
  };
  textFilter('name', 'Name contains', 'e.g. llama');
  textFilter('user', 'User', 'submitter');
  const limit = el('select', { name: 'limit', onchange: () => { p.set('limit', limit.value); changed(); } },
    ['25', '50', '100', '200'].map((n) => el('option', { value: n }, n)));
  limit.value = p.get('limit') || '50';
  filters.appendChild(el('label', {}, 'Per page', limit));
  filters.appendChild(el('button', { type: 'button', class: 'secondary', onclick: () => {
    for (const k of ['phase', 'queue', 'namespace', 'type', 'name', 'user', 'offset']) p.delete(k);
    setHashQuietly('/workloads', p); route();
  } }, 'Clear filters'));
  filters.addEventListener('submit', (ev) => ev.preventDefault());
  onCleanup(() => clearTimeout(typing));
  api('/api/v1/workloads/metadata').then((meta) => {
    for (const [k] of WL_FILTERS) {
      const s = selects[k], have = new Set([...s.options].map((o) => o.value));
      for (const v of listValues(meta, k)) if (!have.has(v)) s.appendChild(el('option', { value: v }, v));
      s.value = p.get(k) || '';
    }
  }).catch(() => { /* the dropdowns keep what the address names */ });
  const sortBy = (key) => {
    if (p.get('sortBy') === key || (!p.get('sortBy') && key === 'createdAt')) p.set('sortOrder', (p.get('sortOrder') || 'desc') === 'desc' ? 'asc' : 'desc');
    else { p.set('sortBy', key); p.set('sortOrder', key === 'name' || key === 'queue' || key === 'type' || key === 'phase' ? 'asc' : 'desc'); }
    setHashQuietly('/workloads', p); refresh();
  };
  let generation = 0;
  const refresh = async () => {
    const mine = ++generation;
    const q = workloadQuery(p);
    try {
      const body = await api('/api/v1/workloads?' + q.toString());
      if (mine !== generation) return true;
      renderWorkloads(table, pager, body, q, sortBy, (offset) => { p.set('offset', String(offset)); setHashQuietly('/workloads', p); refresh(); });
      return true;
    } catch (e) {
      if (mine !== generation) return true;
      replace(table, errorBox(e, 'the workloads'));
      clear(pager);
      return transient(e);
    }
  };
  poll(refresh, POLL_MS);
}
function workloadCells(w) {
  const m = w.metadata || {}, s = w.spec || {}, st = w.status || {};
  const res = s.resources || {};
  const replicas = s.replicas !== undefined ? s.replicas : 1;
  const perReplica = quantity(res.gpu) || 0;
  const ann = m.annotations || {};
  return {
    name: el('a', { href: '#/workloads/' + enc(m.namespace || 'default') + '/' + enc(m.name || '') }, m.name || '?'),
    namespace: m.namespace || 'default', queue: s.queue || 'default', type: s.type || '',
    phase: badge(st.phase || 'Pending'), priority: priorityText(s.priority),
    gpus: String(perReplica * (Number(replicas) || 0)), replicas: String(replicas), user: ann['gantry.dev/submitter'] || '',
    created: timeCell(firstTime(m.creationTimestamp, st.creationTime)), started: timeCell(st.startTime), completed: timeCell(st.endTime),
  };
}
function renderWorkloads(table, pager, body, q, sortBy, go) {
  const items = itemsOf(body);
  const total = body && typeof body.totalCount === 'number' ? body.totalCount : items.length;
  const offset = body && typeof body.offset === 'number' ? body.offset : parseInt(q.get('offset'), 10) || 0;
  const limit = body && typeof body.limit === 'number' && body.limit > 0 ? body.limit : parseInt(q.get('limit'), 10) || 50;
  const sorted = q.get('sortBy'), order = q.get('sortOrder');
  const head = el('tr', {}, WL_COLUMNS.map(([key, label, sortKey]) => {
    const cls = [sortKey ? 'sortable' : '', sortKey && sortKey === sorted ? 'sorted-' + order : '', key === 'gpus' || key === 'replicas' ? 'num' : ''].join(' ').trim();
    return el('th', { class: cls || null, title: sortKey ? 'Sort by ' + label.toLowerCase() : null, onclick: sortKey ? () => sortBy(sortKey) : null }, label);
  }));
  const rows = items.map((w) => {
    const c = workloadCells(w);
    return el('tr', {}, WL_COLUMNS.map(([key]) => el('td', { class: key === 'gpus' || key === 'replicas' ? 'num' : null }, c[key])));
  });
  replace(table, el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, head),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: WL_COLUMNS.length, class: 'muted', text: 'No workloads match.' }))))));
  const first = total === 0 ? 0 : offset + 1, lastShown = Math.min(total, offset + items.length);
  replace(pager,
    el('button', { type: 'button', class: 'secondary small', disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit)) }, '‹ Previous'),
    el('span', { text: first + '–' + lastShown + ' of ' + total }),
    el('button', { type: 'button', class: 'secondary small', disabled: offset + items.length >= total, onclick: () => go(offset + limit) }, 'Next ›'));
}

// ---- nodes ----
function nodesPage() {
  const body = el('div', {}, el('p', { class: 'muted', text: 'Loading nodes…' }));
  add(main, [el('h1', {}, 'Nodes'), body]);
  poll(async () => {
    try { replace(body, nodeTable(itemsOf(await api('/api/v1/nodes')))); return true; }
    catch (e) { replace(body, errorBox(e, 'the nodes')); return transient(e); }
  }, POLL_MS);
}
function gpuCells(n) {
  const alloc = n.allocation && Array.isArray(n.allocation.gpus) ? n.allocation.gpus : null;
  const spec = n.spec || {}, st = n.status || {};
  const count = quantity((spec.capacity || {}).gpu) || quantity((st.capacity || {}).gpu) || 0;
  const cells = alloc ? alloc : Array.from({ length: Math.min(count, 256) }, (_, i) => ({ index: i, workload: null }));
  return cells.map((g) => {
    const idx = g && g.index !== undefined ? String(g.index) : '?';
    const w = g && g.workload ? String(g.workload) : '';
    if (!w) return el('span', { class: 'gpu', title: 'GPU ' + idx + ': free' }, idx);
    if (!w.includes('/')) return el('span', { class: 'gpu busy', title: 'GPU ' + idx + ': ' + w, style: { background: colourOf(w) } }, idx);
    const [ns, name] = w.split('/');
    return el('a', { class: 'gpu busy', href: '#/workloads/' + enc(ns || 'default') + '/' + enc(name || ns), title: 'GPU ' + idx + ': ' + w, style: { background: colourOf(w) } }, idx);
  });
}
function nodeTable(nodes) {
  if (!nodes.length) return el('div', { class: 'message', text: 'No nodes are known.' });
  nodes = nodes.filter((n) => n && n.metadata).sort((a, b) => String((a.spec || {}).resourcePool || '').localeCompare(String((b.spec || {}).resourcePool || '')) || String(a.metadata.name).localeCompare(String(b.metadata.name)));
  const workloads = new Set();
  for (const n of nodes) for (const g of (n.allocation && n.allocation.gpus) || []) if (g && g.workload) workloads.add(String(g.workload));
  const usage = (res, n) => {
    const cap = quantity(((n.spec || {}).capacity || (n.status || {}).capacity || {})[res]);
    const a = quantity(((n.status || {}).allocated || {})[res]) || 0;
    return cap === null ? '' : fmtQuantity(res, a) + ' / ' + fmtQuantity(res, cap);
  };
  const rows = nodes.map((n) => {
    const s = n.spec || {}, st = n.status || {};
    return el('tr', { 'data-node': n.metadata.name },
      el('td', { class: 'name' }, n.metadata.name, s.unschedulable ? el('span', { class: 'badge phase-Stopped', title: 'Cordoned: nothing new lands here' }, ' cordoned') : ''),
      el('td', { text: s.resourcePool || '' }), el('td', { text: [s.gpuType, s.gpuVendor].filter(Boolean).join(' · ') }),
      el('td', {}, badge(st.phase || 'Unknown')), el('td', {}, el('div', { class: 'gpus' }, gpuCells(n))),
      el('td', { class: 'num', text: usage('gpu', n) }), el('td', { class: 'num', text: usage('cpu', n) }), el('td', { class: 'num', text: usage('memory', n) }));
  });
  const legend = el('div', { class: 'legend' }, el('span', {}, el('span', { class: 'swatch', style: { background: '#e8edf3' } }), 'free'),
    [...workloads].sort().map((w) => {
      if (!w.includes('/')) return el('span', {}, el('span', { class: 'swatch', style: { background: colourOf(w) } }), w);
      const [ns, name] = w.split('/');
      return el('a', { href: '#/workloads/' + enc(ns || 'default') + '/' + enc(name || ns) }, el('span', { class: 'swatch', style: { background: colourOf(w) } }), w);
    }));
  return el('div', {}, legend, el('div', { class: 'table-wrap' }, el('table', {},
    el('thead', {}, el('tr', {}, ['Node', 'Pool', 'GPU type', 'Phase', 'GPU allocation by index', 'GPUs', 'CPU', 'Memory'].map((h, i) => el('th', { class: i >= 5 ? 'num' : null, text: h })))),
    el('tbody', {}, rows))));
}

"""#
}
