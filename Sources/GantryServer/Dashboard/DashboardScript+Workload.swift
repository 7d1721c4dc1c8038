extension DashboardScript {
    /// One workload: summary, actions, replicas, conditions, events, a following log tail,
    /// GPU and training metric charts.
    static let workloadPage = #"""
const GPU_METRICS = [
  ['gpu_utilization_percent', 'GPU utilisation', '%', 100],
  ['gpu_memory_used_mib', 'GPU memory used', 'MiB', undefined],
  ['gpu_power_watts', 'GPU power', 'W', undefined]];
const RANGES = [['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400]];

function workloadPage(ns, name) {
  const path = wlPath(ns, name);
  const title = el('h1', {}, el('span', { text: ns + ' / ' + name }));
  const phase = el('span');
  const actions = el('span', { class: 'row' });
  title.appendChild(phase);
  title.appendChild(actions);
  const summary = el('div', { class: 'panel' }, el('p', { class: 'muted', text: 'Loading the workload…' }));
  const replicas = el('div', { class: 'table-wrap' });
  const conditions = el('div', { class: 'table-wrap' });
  const events = el('div', { class: 'table-wrap' });
  const body = el('div', {},
    el('section', { class: 'panel' }, el('h2', { text: 'Replicas' }), replicas),
    el('div', { class: 'columns' },
      el('section', { class: 'panel' }, el('h2', { text: 'Conditions' }), conditions),
      el('section', { class: 'panel' }, el('h2', { text: 'Events' }), events)));
  const logs = logViewer(path);
  const metrics = metricsPanel(path);
  add(main, [el('p', { class: 'small' }, el('a', { href: '#/workloads' }, '‹ All workloads')), title, summary, body, logs.element, metrics.element]);
  let fatal = false;
  const refresh = async () => {
    let w;
    try { w = await api(path); }
    catch (e) {
      replace(summary, errorBox(e, e.status === 404 ? 'workload ' + ns + '/' + name : 'workload ' + ns + '/' + name));
      if (!transient(e)) { body.hidden = true; logs.element.hidden = true; metrics.element.hidden = true; clear(actions); clear(phase); fatal = true; metrics.stop(); logs.stop(); }
      return transient(e);
    }
    body.hidden = false;
    const st = w.status || {};
    replace(phase, badge(st.phase || 'Pending'));
    renderActions(actions, w, path);
    replace(summary, summaryList(w));
    replace(conditions, conditionTable(st.conditions || []));
    let reps = st.replicas || [];
    try {
      const h = await api(path + '/replicas');
      if (h && Array.isArray(h.replicas)) reps = h.replicas;
    } catch (e) { /* the status's replicas */ }
    replace(replicas, replicaTable(reps, (rank) => logs.open(rank)));
    logs.setReplicas(reps);
    try { replace(events, eventTable(itemsOf(await api(path + '/events?limit=100')))); }
    catch (e) { replace(events, errorBox(e, 'the events of this workload')); }
    return true;
  };
  poll(refresh, POLL_MS);
  metrics.start();
  onCleanup(() => { logs.stop(); metrics.stop(); });
  return fatal;
}

function summaryList(w) {
  const m = w.metadata || {}, s = w.spec || {}, st = w.status || {};
  const res = s.resources || {};
  const ann = m.annotations || {};
  const resources = Object.keys(res).map((k) => k + ' ' + res[k]).join(', ');
  const entries = [
    ['Display name', s.displayName], ['Description', s.description], ['Type', s.type], ['Queue', s.queue || 'default'],
    ['Priority', priorityText(s.priority)], ['Replicas', s.replicas !== undefined ? s.replicas : 1], ['Per replica', resources],
    ['Image', s.image], ['Command', s.command], ['User', ann['gantry.dev/submitter']], ['Runs as', ann['gantry.dev/run-as']],
    ['Owner', w.owner + (w.source ? ' (' + w.source + ')' : '')], ['Created', fmtTime(firstTime(m.creationTimestamp, st.creationTime))],
    ['Started', fmtTime(st.startTime)], ['Finished', fmtTime(st.endTime)], ['Queue position', st.phase === 'Pending' && st.queuePosition !== undefined ? st.queuePosition : ''],
    ['Retries', st.retryCount ? st.retryCount + (s.maxRetry !== undefined ? ' of ' + s.maxRetry : '') : ''],
    ['Timeout', s.timeout ? s.timeout + ' s' : ''], ['Suspended', s.suspend ? 'yes' : ''], ['Message', st.message]];
  const dl = el('dl', { class: 'summary' });
  for (const [k, v] of entries) {
    if (v === undefined || v === null || v === '' || v === 'undefined') continue;
    dl.appendChild(el('div', {}, el('dt', { text: k }), el('dd', { text: String(v) })));
  }
  return dl;
}

function renderActions(box, w, path) {
  const m = w.metadata || {}, st = w.status || {}, s = w.spec || {};
  const allowed = canWrite(m.namespace);
  const stopped = s.suspend || st.phase === 'Stopped' || (st.override && st.override.suspend);
  const act = async (label, fn) => {
    banner(label + '…');
    try { await fn(); banner(label + ': done.'); }
    catch (e) { banner(label + ' failed' + (e.status ? ' (' + e.status + ' ' + e.code + ')' : '') + ': ' + e.message, true); }
  };
  const button = (label, cls, handler, disabled) => el('button', {
    type: 'button', class: cls, disabled: !allowed.ok || disabled,
    title: allowed.ok ? null : allowed.why, onclick: handler }, label);
  replace(box,
    button('Stop', 'secondary', () => act('Stop', () => api(path + ':stop', { method: 'POST', json: {} })), stopped),
    button('Resume', 'secondary', () => act('Resume', () => api(path + ':resume', { method: 'POST', json: {} })), !stopped),
    button('Clone', 'secondary', () => {
      const n = window.prompt('Name of the copy', (m.name || 'workload') + '-copy');
      if (!n) return;
      act('Clone', async () => {
        const c = await api(path + ':clone', { method: 'POST', json: { name: n.trim() } });
        const cm = (c && c.metadata) || {};
        if (cm.name) location.hash = '#/workloads/' + enc(cm.namespace || m.namespace) + '/' + enc(cm.name);
      });
    }),
    button('Delete', 'danger', () => {
      if (!window.confirm('Delete workload ' + m.namespace + '/' + m.name + '? Its replicas are stopped.')) return;
      act('Delete', async () => { await api(path, { method: 'DELETE' }); location.hash = '#/workloads'; });
    }));
}

function replicaTable(reps, openLog) {
  if (!reps.length) return el('p', { class: 'muted', text: 'No replicas are placed yet.' });
  const heads = ['Rank', 'Replica', 'Node', 'GPUs', 'Phase', 'Exit code', 'Restarts', 'Started', ''];
  return el('table', {}, el('thead', {}, el('tr', {}, heads.map((h) => el('th', { text: h })))),
    el('tbody', {}, reps.map((r) => {
      const gpus = Array.isArray(r.gpus) ? r.gpus.join(',') : (r.gpuCount !== undefined ? String(r.gpuCount) : '');
      return el('tr', { 'data-rank': r.rank },
        el('td', { class: 'num', text: String(r.rank !== undefined ? r.rank : '') }), el('td', { text: r.name || '' }),
        el('td', {}, r.node ? el('a', { href: '#/nodes', title: 'Nodes' }, r.node) : ''),
        el('td', { text: gpus }), el('td', {}, badge(r.phase || '')),
        el('td', { class: 'num', text: r.exitCode === null || r.exitCode === undefined ? '' : String(r.exitCode) }),
        el('td', { class: 'num', text: String(r.restarts || 0) }), el('td', {}, timeCell(r.startTime)),
        el('td', {}, el('button', { type: 'button', class: 'small secondary', onclick: () => openLog(String(r.rank)) }, 'Log')));
    })));
}

function conditionTable(conds) {
  if (!conds.length) return el('p', { class: 'muted', text: 'No conditions yet.' });
  return el('table', {}, el('thead', {}, el('tr', {}, ['Type', 'Status', 'Reason', 'Message', 'Since'].map((h) => el('th', { text: h })))),
    el('tbody', {}, conds.map((c) => el('tr', {},
      el('td', { text: c.type || '' }), el('td', {}, badge(c.status || '', 'status')), el('td', { text: c.reason || '' }),
      el('td', { class: 'wrap', text: c.message || '' }), el('td', {}, timeCell(c.lastTransitionTime))))));
}

function eventTable(items) {
  if (!items.length) return el('p', { class: 'muted', text: 'No events.' });
  const sorted = [...items].sort((a, b) => String(b.lastTimestamp || '').localeCompare(String(a.lastTimestamp || '')));
  return el('table', {}, el('thead', {}, el('tr', {}, ['Type', 'Reason', 'Message', 'Count', 'Last seen'].map((h) => el('th', { text: h })))),
    el('tbody', {}, sorted.map((e) => el('tr', {},
      el('td', {}, badge(e.type || 'Normal', 'type')), el('td', { text: e.reason || '' }), el('td', { class: 'wrap', text: e.message || '' }),
      el('td', { class: 'num', text: String(e.count || 1) }), el('td', {}, timeCell(e.lastTimestamp || e.firstTimestamp))))));
}

// A log tail that follows: fetch ?follow=true&tail=200 and read the body as it arrives.
function logViewer(path) {
  const select = el('select', { 'aria-label': 'Replica' });
  const follow = el('input', { type: 'checkbox', checked: true });
  const status = el('span', { class: 'muted small' });
  const pre = el('pre', { class: 'log', 'aria-live': 'off' });
  let ctrl = null, ranks = '', current = null, stopped = false;
  const element = el('section', { class: 'panel' },
    el('h2', { text: 'Log' }),
    el('div', { class: 'row' }, el('label', {}, 'Replica ', select), el('label', {}, follow, ' follow'),
      el('button', { type: 'button', class: 'small secondary', onclick: () => { if (current !== null) open(current); } }, 'Reload'),
      el('button', { type: 'button', class: 'small secondary', onclick: () => { pre.textContent = ''; } }, 'Clear'), status),
    pre);
  let text = '';
  const append = (chunk) => {
    if (!chunk) return;
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
    text = pre.textContent + chunk;
    if (text.length > LOG_CAP) {
      text = text.slice(text.length - LOG_CAP);
      const nl = text.indexOf('\n');
      if (nl >= 0) text = text.slice(nl + 1);
    }
    pre.textContent = text;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  };
  const open = async (rank) => {
    if (stopped) return;
    if (ctrl) ctrl.abort();
    const c = new AbortController();
    ctrl = c;
    current = rank;
    if (select.value !== rank) select.value = rank;
    pre.textContent = '';
    status.textContent = 'Connecting…';
    const q = follow.checked ? '?follow=true&tail=200' : '?tail=200';
    try {
      const r = await request(path + '/replicas/' + enc(rank) + '/logs' + q, { signal: c.signal, headers: { Accept: 'text/plain' } });
      status.textContent = follow.checked ? 'Following replica ' + rank + '…' : 'The last 200 lines of replica ' + rank + '.';
      const dec = new TextDecoder();
      if (r.body && r.body.getReader) {
        const reader = r.body.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          append(dec.decode(value, { stream: true }));
        }
        append(dec.decode());
      } else {
        append(await r.text());
      }
      if (ctrl === c && follow.checked) status.textContent = 'The log stream of replica ' + rank + ' ended (the replica stopped, or the daemon closed it).';
    } catch (e) {
      if (e && e.name === 'AbortError') return;
      if (ctrl !== c) return;
      status.textContent = e.status === 404 ? 'Replica ' + rank + ' has no log yet.' :
        e.status === 403 ? 'Your token cannot read this log: ' + e.message :
        e.status === 401 ? 'Sign in to read the log.' : 'The log stopped: ' + e.message;
    }
  };
  select.addEventListener('change', () => open(select.value));
  follow.addEventListener('change', () => { if (current !== null) open(current); });
  return {
    element,
    open,
    stop() { stopped = true; if (ctrl) ctrl.abort(); },
    setReplicas(reps) {
      const list = reps.map((r) => String(r.rank)).filter((r) => r !== 'undefined');
      if (list.join(',') === ranks) return;
      ranks = list.join(',');
      replace(select, list.map((r) => el('option', { value: r }, 'rank ' + r)));
      if (current === null && list.length) open(list[0]);
      else if (current !== null) select.value = current;
    },
  };
}

function metricsPanel(path) {
  const range = el('select', { 'aria-label': 'Time range' }, RANGES.map(([label, s]) => el('option', { value: String(s) }, 'last ' + label)));
  range.value = '3600';
  const gpu = el('div', { class: 'charts' }, el('p', { class: 'muted', text: 'Loading GPU metrics…' }));
  const training = el('div', { class: 'charts' }, el('p', { class: 'muted', text: 'Loading training metrics…' }));
  const element = el('section', { class: 'panel' },
    el('div', { class: 'row' }, el('h2', { text: 'Metrics' }), range),
    el('h3', { text: 'GPUs' }), gpu, el('h3', { text: 'Training' }), training);
  let timer = null, stopped = false;
  const query = () => {
    const now = Date.now() / 1000, span = Number(range.value) || 3600;
    return '?start=' + enc(new Date((now - span) * 1000).toISOString().replace(/\.\d+Z$/, 'Z')) +
      '&end=' + enc(new Date(now * 1000).toISOString().replace(/\.\d+Z$/, 'Z')) + '&numberOfSamples=120';
  };
  const label = (s, by) => (by === 'gpu' ? 'GPU ' + (s.gpu !== undefined && s.gpu !== null ? s.gpu : '?') : '') +
    (s.rank !== undefined && s.rank !== null ? (by === 'gpu' ? ' · rank ' : 'rank ') + s.rank : '');
  const load = async () => {
    timer = null;
    if (stopped) return;
    if (!document.hidden) {
      try {
        const body = await api(path + '/metrics' + query());
        const series = (body && Array.isArray(body.series)) ? body.series : [];
        const charts = GPU_METRICS.map(([metric, title, unit, max]) =>
          lineChart(title, unit, series.filter((s) => s.metric === metric).map((s) => ({ label: label(s, 'gpu'), points: s.samples || [] })), max));
        const other = [...new Set(series.map((s) => s.metric).filter((m) => !GPU_METRICS.some((g) => g[0] === m)))];
        for (const m of other) charts.push(lineChart(m, '', series.filter((s) => s.metric === m).map((s) => ({ label: label(s, 'gpu'), points: s.samples || [] }))));
        replace(gpu, series.length ? charts : el('p', { class: 'muted', text: 'No GPU samples in this range.' }));
      } catch (e) { if (!stopped) replace(gpu, errorBox(e, 'the GPU metrics')); }
      try {
        const body = await api(path + '/trainingMetrics' + query());
        const series = (body && Array.isArray(body.series)) ? body.series : [];
        const names = [...new Set(series.map((s) => String(s.metric)))].sort();
        replace(training, names.length ? names.map((m) => lineChart(m, '', series.filter((s) => String(s.metric) === m)
          .sort((a, b) => (a.rank || 0) - (b.rank || 0)).map((s) => ({ label: label(s, 'rank'), points: s.samples || [] }))))
          : el('p', { class: 'muted', text: 'No training metrics in this range (replicas print gantry.metric lines to report them).' }));
      } catch (e) { if (!stopped) replace(training, errorBox(e, 'the training metrics')); }
    }
    if (!stopped) timer = setTimeout(load, 10000);
  };
  range.addEventListener('change', () => { if (timer) clearTimeout(timer); load(); });
  return {
    element,
    start() { load(); },
    stop() { stopped = true; if (timer) clearTimeout(timer); },
  };
}

start();
"""#
}
