extension DashboardScript {
    /// SVG line charts with axes, grid and a legend; one line per series.
    static let charts = #"""
const CHART_COLOURS = ['#2f6fdf', '#d97706', '#16a34a', '#c026d3', '#dc2626', '#0891b2', '#65a30d', '#7c3aed', '#db2777', '#475569'];
function niceStep(range, count) {
  const raw = range / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}
function fmtTick(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return trim(v / 1e9) + 'G';
  if (a >= 1e6) return trim(v / 1e6) + 'M';
  if (a >= 1e4) return trim(v / 1e3) + 'k';
  return trim(v);
}
function fmtClock(ts, span) {
  const d = new Date(ts * 1000);
  const hh = String(d.getHours()).padStart(2, '0'), mm = String(d.getMinutes()).padStart(2, '0');
  if (span < 600) return hh + ':' + mm + ':' + String(d.getSeconds()).padStart(2, '0');
  if (span > 2 * 86400) return (d.getMonth() + 1) + '/' + d.getDate() + ' ' + hh + ':' + mm;
  return hh + ':' + mm;
}
// lines: [{label, points: [[ts, value], ...]}]
function lineChart(title, unit, lines, fixedMax) {
  const W = 480, H = 210, L = 48, R = 10, T = 10, B = 26;
  const box = el('div', { class: 'chart' }, el('h3', { text: title + (unit ? ' (' + unit + ')' : '') }));
  const pts = [];
  for (const l of lines) for (const p of l.points) if (Array.isArray(p) && isFinite(p[0]) && isFinite(p[1])) pts.push(p);
  if (pts.length === 0) { add(box, [el('p', { class: 'muted small', text: 'No samples in this range.' })]); return box; }
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  if (x1 <= x0) { x0 -= 30; x1 += 30; }
  let y0 = Math.min(0, ...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (fixedMax !== undefined && y1 <= fixedMax) y1 = fixedMax;
  if (y1 <= y0) y1 = y0 + 1;
  const step = niceStep(y1 - y0, 4);
  y1 = Math.ceil(y1 / step) * step;
  y0 = Math.floor(y0 / step) * step;
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title });
  for (let v = y0; v <= y1 + step / 2; v += step) {
    const y = sy(v).toFixed(1);
    s.appendChild(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
    s.appendChild(svg('text', { x: L - 5, y: Number(y) + 3, 'text-anchor': 'end' }, fmtTick(v)));
  }
  const xStep = (x1 - x0) / 4;
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + i * xStep, x = sx(xv).toFixed(1);
    s.appendChild(svg('line', { class: 'axis', x1: x, x2: x, y1: H - B, y2: H - B + 4 }));
    s.appendChild(svg('text', { x: x, y: H - B + 15, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, fmtClock(xv, x1 - x0)));
  }
  s.appendChild(svg('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  s.appendChild(svg('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const legend = el('div', { class: 'legend' });
  lines.forEach((l, i) => {
    const colour = CHART_COLOURS[i % CHART_COLOURS.length];
    const ps = l.points.filter((p) => Array.isArray(p) && isFinite(p[0]) && isFinite(p[1])).sort((a, b) => a[0] - b[0]);
    if (ps.length === 0) return;
    const d = ps.map((p, j) => (j ? 'L' : 'M') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1)).join(' ');
    const path = svg('path', { class: 'line', d: d, stroke: colour });
    path.appendChild(svg('title', {}, l.label + ': last ' + trim(ps[ps.length - 1][1])));
    s.appendChild(path);
    if (ps.length === 1) s.appendChild(svg('circle', { cx: sx(ps[0][0]), cy: sy(ps[0][1]), r: 2.5, fill: colour }));
    add(legend, [el('span', {}, el('span', { class: 'swatch', style: { background: colour } }), l.label + ' ' + trim(ps[ps.length - 1][1]))]);
  });
  add(box, [s, legend]);
  return box;
}

"""#
}
