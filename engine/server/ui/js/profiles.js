// Profiles: each one's state, success rate (and what it counts), p99, queue, last error and dead
// letters, live; a profile's page adds its settings, its latest attempts and re-enabling after 410.
import * as api from './api.js';
import { el, fmt, ms, pct, stateBadge, table, time } from './ui.js';

let unsubscribe = null;

// A sparkline of the profile's deliveries per second over the feed's history.
function spark(history, id) {
  const canvas = el('canvas', { class: 'spark', width: 120, height: 28, 'aria-hidden': 'true' });
  const points = [];
  for (let i = 1; i < history.length; ++i) {
    const a = history[i - 1].s.profiles.find((p) => p.profileId === id);
    const b = history[i].s.profiles.find((p) => p.profileId === id);
    const dt = history[i].t - history[i - 1].t;
    points.push(a && b && dt > 0 ? Math.max(0, (b.delivered - a.delivered) / dt) : 0);
  }
  const ctx = canvas.getContext('2d');
  const max = Math.max(1, ...points);
  ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue('--accent');
  ctx.beginPath();
  points.slice(-60).forEach((v, i, all) => {
    const x = (i / Math.max(1, all.length - 1)) * 118 + 1;
    const y = 27 - (v / max) * 26;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  return canvas;
}

function list(main, feed) {
  const body = el('div');
  main.append(el('h1', {}, 'Profiles'), body);
  unsubscribe = feed.on((s) => {
    const rows = s.profiles.map((p) => ({
      id: p.profileId,
      testid: `profile-${p.profileId}`,
      cells: [
        p.profileId, stateBadge(p.state),
        el('span', { title: s.successRateCounts }, pct(p.successRate5m)),
        ms(p.p99Ms), fmt(p.queue), fmt(p.inFlight),
        p.lastError ? el('span', { class: 'error', title: time(p.lastError.at) }, p.lastError.message) : '–',
        fmt(p.deadLetters), spark(feed.history, p.profileId),
      ],
    }));
    body.replaceChildren(rows.length
      ? table(['Profile', 'State', 'Success (5 min)', 'p99', 'Queue', 'In flight', 'Last error',
               'Dead letters', 'Deliveries/s'], rows,
              (r) => { location.hash = `#/profiles/${encodeURIComponent(r.id)}`; })
      : el('p', { class: 'muted' }, 'No profiles yet: create one with a subscription.'));
  });
}

async function detail(main, feed, id) {
  const state = el('div', { class: 'tiles' });
  const settings = el('pre', { 'aria-label': 'Profile settings' });
  const attempts = el('div');
  const actions = el('div', { class: 'toolbar' });
  main.append(el('h1', {}, `Profile ${id}`), state, actions,
    el('div', { class: 'split' },
      el('section', {}, el('h2', {}, 'Settings'), settings),
      el('section', {}, el('h2', {}, 'Latest attempts'), attempts)));
  const r = await api.call('GET', `/subscriptions/1/profiles/${encodeURIComponent(id)}`);
  if (!r.ok) {
    settings.textContent = api.errorOf(r).text;
    return;
  }
  settings.textContent = JSON.stringify(r.body, null, 2);
  const reenable = el('button', { type: 'button', class: 'primary', hidden: true }, 'Re-enable');
  reenable.addEventListener('click', async () => {
    // An update enables a profile its receiver disabled with 410 Gone, and asks a receiver that
    // refused CloudEvents endpoint validation again.
    const { disabled, endpointValidation, ...profile } = r.body;
    const u = await api.call('PUT', `/subscriptions/1/profiles/${encodeURIComponent(id)}`, profile);
    reenable.replaceWith(el('span', { class: u.ok ? 'ok' : 'error' }, u.ok ? 'enabled again' : api.errorOf(u).text));
  });
  actions.append(reenable, el('a', { href: '#/deliveries/dead-letters' }, 'Dead letters'));
  const tick = async (s) => {
    const p = s.profiles.find((x) => x.profileId === id);
    if (!p) return;
    reenable.hidden = p.state !== 'disabled' && p.state !== 'refused';
    state.replaceChildren(...[
      ['State', stateBadge(p.state)], ['Success (5 min)', pct(p.successRate5m)], ['p99', ms(p.p99Ms)],
      ['Queue', fmt(p.queue)], ['Dead letters', fmt(p.deadLetters)],
      ['Last error', p.lastError ? `${p.lastError.message} (${time(p.lastError.at)})` : '–'],
      ['Last success', time(p.lastSuccessAt)],
      ...(p.endpointValidation ? [['Endpoint validation', [p.endpointValidation.state,
        p.endpointValidation.reason].filter(Boolean).join(': ')]] : []),
    ].map(([label, value]) => el('div', { class: 'tile' }, el('div', { class: 'label' }, label),
                                 el('div', {}, value))));
    const d = await api.call('GET', `/v1/deliveries?profileId=${encodeURIComponent(id)}&limit=20`);
    if (!d.ok) return;
    attempts.replaceChildren(table(['At', 'Status', 'Latency', 'Attempt', 'Outcome'],
      d.body.results.map((a) => ({ cells: [time(a.at), a.status ?? a.error, ms(a.latencyMs),
                                           `${a.attempt}/${a.maxAttempts}`, a.outcome] }))));
  };
  unsubscribe = feed.on(tick);
}

export async function render(main, { feed, args }) {
  if (args[0]) await detail(main, feed, args[0]); else list(main, feed);
}

export function dispose() { unsubscribe?.(); unsubscribe = null; }
