// Overview: is it flowing (tiles and charts from the stats feed), who is failing (the strip).
import { el, fmt, ms, pct } from './ui.js';

let unsubscribe = null;
let charts = [];

// Per-second rate of counter `pick` between the last two snapshots at least `span` s apart.
function rate(history, pick, span = 5) {
  if (history.length < 2) return 0;
  const last = history[history.length - 1];
  let first = history[0];
  for (let i = history.length - 2; i >= 0; --i) {
    first = history[i];
    if (last.t - first.t >= span) break;
  }
  const dt = last.t - first.t;
  return dt > 0 ? Math.max(0, (pick(last.s) - pick(first.s)) / dt) : 0;
}

function series(history, picks) {
  const xs = history.map((h) => h.t);
  const out = [xs];
  for (const pick of picks) {
    out.push(history.map((h, i) => (i === 0 ? null : pick(h.s, history[i - 1].s, h.t - history[i - 1].t))));
  }
  return out;
}

function chart(target, title, labels, scale) {
  const colors = ['#2f5bd3', '#1d7a3a', '#b3261e'];
  return new uPlot({
    title, width: Math.max(360, target.clientWidth - 24), height: 200,
    scales: { y: scale ?? {} },
    series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, spanGaps: true }))],
    axes: [{}, { size: 60 }],
  }, [[], ...labels.map(() => [])], target);
}

export function render(main, { feed }) {
  const tile = (id, label) => el('div', { class: 'tile' },
    el('div', { class: 'label', id: `${id}-label` }, label),
    el('div', { class: 'value', 'data-testid': id, 'aria-labelledby': `${id}-label` }, '–'));
  const tiles = el('div', { class: 'tiles' },
    tile('events-rate', 'Events/s'), tile('deliveries-rate', 'Deliveries/s'),
    tile('success', 'Success (5 min)'), tile('p99', 'p99 ingest → 2xx'),
    tile('queued', 'Queued'), tile('dlq', 'Dead letters'),
    tile('events-total', 'Events accepted'), tile('deliveries-ok', 'Delivered'),
    tile('deliveries-failed', 'Failed attempts'));
  const boxes = [0, 1, 2].map(() => el('div', { class: 'panel' }));
  main.append(el('h1', {}, 'Overview'), tiles, el('div', { class: 'charts' }, boxes));
  charts = [
    chart(boxes[0], 'Throughput (per second)', ['events', 'deliveries']),
    chart(boxes[1], 'Latency ingest → 2xx (ms)', ['p50', 'p99'], { distr: 3 }),
    chart(boxes[2], 'Queued notifications', ['queued + held']),
  ];
  const set = (id, v) => { main.querySelector(`[data-testid="${id}"]`).textContent = v; };
  unsubscribe = feed.on((s) => {
    const h = feed.history;
    set('events-rate', rate(h, (x) => x.counters.accepted).toFixed(1));
    set('deliveries-rate', rate(h, (x) => x.counters.delivered).toFixed(1));
    let requests = 0, ok = 0;
    for (const p of s.profiles) { requests += p.requests5m; ok += (p.successRate5m ?? 0) * p.requests5m; }
    set('success', requests ? pct(ok / requests) : '–');
    main.querySelector('[data-testid="success"]').title = s.successRateCounts;
    set('p99', s.latency.ingestTo2xxMs?.count ? ms(s.latency.ingestTo2xxMs.p99) : '–');
    set('queued', fmt(s.gauges.queued + s.gauges.held));
    set('dlq', fmt(s.gauges.deadLetters));
    set('events-total', fmt(s.counters.accepted));
    set('deliveries-ok', fmt(s.counters.delivered));
    set('deliveries-failed', fmt(s.counters.failed));
    if (document.hidden) return;  // no redraws while the tab is hidden
    const perSecond = (pick) => (x, prev, dt) => (dt > 0 ? Math.max(0, (pick(x) - pick(prev)) / dt) : null);
    charts[0].setData(series(h, [perSecond((x) => x.counters.accepted), perSecond((x) => x.counters.delivered)]));
    charts[1].setData(series(h, [(x) => x.latency.ingestTo2xxMs?.p50 || null,
                                 (x) => x.latency.ingestTo2xxMs?.p99 || null]));
    charts[2].setData(series(h, [(x) => x.gauges.queued + x.gauges.held]));
  });
}

export function dispose() {
  unsubscribe?.();
  for (const c of charts) c.destroy();
  charts = [];
}
