/// The dashboard's style sheet: a compact layout for laptop screens (1366 px wide and up),
/// still usable narrower (tables scroll sideways).
enum DashboardStyles {
    static let css = #"""
:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1d232b; --muted: #5f6b7a; --line: #dde2e8;
  --accent: #2f6fdf; --accent-ink: #fff; --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030;
  --deserved: #2f6fdf; --borrowed: #d97706; --alloc: #3b82f6; --free: #e8edf3;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; color: var(--ink); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
header.top { display: flex; align-items: center; gap: 18px; padding: 8px 20px; background: #17202b; color: #e8edf3; position: sticky; top: 0; z-index: 5; }
header.top .brand { color: #fff; font-weight: 700; font-size: 17px; letter-spacing: .3px; }
header.top nav { display: flex; gap: 4px; }
header.top nav a { color: #c9d3df; padding: 5px 10px; border-radius: 4px; }
header.top nav a.active { background: #2b3848; color: #fff; }
header.top .spacer { flex: 1; }
.who { color: #c9d3df; font-size: 13px; }
.live { font-size: 12px; color: #8fd19e; }
.live.paused { color: #c9d3df; }
main { padding: 16px 20px 40px; max-width: 1600px; margin: 0 auto; }
h1 { font-size: 20px; margin: 4px 0 12px; display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
h1 button { font-size: 13px; font-weight: 400; }
h2 { font-size: 16px; margin: 4px 0 8px; }
.panel > .row > h2 { margin: 0; }
h3 { font-size: 14px; margin: 10px 0 6px; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
button { font: inherit; padding: 5px 12px; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-ink); cursor: pointer; }
button.secondary { background: var(--panel); color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
button.small { padding: 2px 8px; font-size: 12px; }
button:disabled { opacity: .45; cursor: not-allowed; }
input, select { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; background: #fff; color: var(--ink); }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin-bottom: 14px; }
.row { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.banner { margin: 10px 20px 0; padding: 8px 12px; border-radius: 4px; background: #fff4e5; border: 1px solid #f3c98b; }
.banner.error { background: #fdecec; border-color: #f1b0b0; }
.message { padding: 14px 16px; border-radius: 6px; background: var(--panel); border: 1px solid var(--line); }
.message.error { border-color: #f1b0b0; background: #fdecec; }
.message.denied { border-color: #f3c98b; background: #fff4e5; }
.message h2 { margin-top: 0; }
.login { position: fixed; inset: 0; background: rgba(15, 20, 28, .45); z-index: 10; display: flex; align-items: flex-start; justify-content: center; padding-top: 90px; }
.login[hidden] { display: none; }
.login form { background: var(--panel); padding: 18px 20px; border-radius: 8px; width: 520px; max-width: 94vw; box-shadow: 0 10px 30px rgba(0,0,0,.25); }
.login h2 { margin-top: 0; }
.login label { display: flex; flex-direction: column; gap: 4px; margin: 10px 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: var(--panel); }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; min-width: 240px; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .3px; background: #fafbfc; }
th.sortable { cursor: pointer; user-select: none; }
th.sortable:hover { color: var(--ink); }
th.sorted-asc::after { content: " \25B2"; }
th.sorted-desc::after { content: " \25BC"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #e8edf3; color: #334; }
.phase-Running, .phase-Ready, .phase-Open, .status-True { background: #dcf5e6; color: #14653a; }
.phase-Pending, .phase-Updating { background: #fff1d6; color: #8a5a00; }
.phase-Succeeded { background: #dde9ff; color: #1c4fb0; }
.phase-Failed, .phase-NotReady, .status-False { background: #fde1e1; color: #9b1c1c; }
.phase-Stopped, .phase-Closed { background: #e9e9ee; color: #444; }
.type-Warning { background: #fde1e1; color: #9b1c1c; }
.type-Normal { background: #e8edf3; }
.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-end; }
.filters label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
.pager { display: flex; gap: 10px; align-items: center; margin-top: 8px; }
/* queues */
.queue-table td.name { font-weight: 600; }
.tree-pad { display: inline-block; }
.tree-pad::before { content: "\2514\2500 "; color: #aab4c0; }
.quota { min-width: 330px; }
.quota-line { display: grid; grid-template-columns: 64px 1fr 190px; gap: 8px; align-items: center; margin: 2px 0; font-size: 12px; }
.quota-line .res { color: var(--muted); }
.quota-line .nums { font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { position: relative; height: 12px; background: var(--free); border-radius: 3px; overflow: hidden; }
.bar .used { position: absolute; top: 0; bottom: 0; left: 0; background: var(--alloc); }
.bar .borrowed { position: absolute; top: 0; bottom: 0; background: var(--borrowed); }
.bar .deserved { position: absolute; top: -2px; bottom: -2px; width: 2px; background: #17202b; }
.bar .capability { position: absolute; top: 0; bottom: 0; right: 0; background: repeating-linear-gradient(45deg, #d5dbe3, #d5dbe3 3px, transparent 3px, transparent 6px); }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; color: var(--muted); margin: 6px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 4px; border: 1px solid rgba(0,0,0,.12); }
.swatch.used { background: var(--alloc); } .swatch.borrowed { background: var(--borrowed); }
.swatch.deserved { background: #17202b; width: 3px; } .swatch.capability { background: repeating-linear-gradient(45deg, #d5dbe3, #d5dbe3 3px, #fff 3px, #fff 6px); }
/* workload page */
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 6px 18px; margin: 0; }
.summary div { display: flex; gap: 8px; min-width: 0; }
.summary dt { color: var(--muted); min-width: 92px; }
.summary dd { margin: 0; overflow-wrap: anywhere; }
.columns { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 14px; }
@media (max-width: 1100px) { .columns { grid-template-columns: minmax(0, 1fr); } }
pre.log { background: #10161e; color: #d6e2ee; padding: 10px 12px; border-radius: 6px; height: 320px; overflow: auto; margin: 6px 0 0; font-size: 12px; line-height: 1.4; white-space: pre-wrap; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 12px; }
.chart { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.chart h3 { margin: 0 0 4px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .axis { stroke: #8a96a6; stroke-width: 1; }
.chart .grid { stroke: #e6eaef; stroke-width: 1; }
.chart text { font-size: 10px; fill: #5f6b7a; }
.chart .line { fill: none; stroke-width: 1.6; }
/* nodes */
.gpus { display: flex; flex-wrap: wrap; gap: 3px; }
.gpu { width: 34px; height: 26px; border-radius: 3px; display: flex; align-items: center; justify-content: center; font-size: 11px; background: var(--free); color: #445; border: 1px solid #d0d7e0; }
.gpu.busy { color: #fff; border-color: rgba(0,0,0,.15); text-shadow: 0 1px 1px rgba(0,0,0,.35); }
a.gpu:hover { text-decoration: none; outline: 2px solid #17202b; }
"""#
}
