// Deliveries: the live tail of webhook requests (pause, filters, a drawer with the request, the
// response and Resend), and the dead letters with "Replay N" after confirmation.
import * as api from './api.js';
import { confirm, el, ms, table, time } from './ui.js';

const MAX_ROWS = 200;
let abort = null;
let refresh = null;  // the dead letters' periodic reload

function drawer(a) {
  const close = el('button', { type: 'button' }, 'Close');
  const resend = el('button', { type: 'button', class: 'primary', disabled: !a.resendable }, 'Resend');
  const note = el('span', { role: 'status' });
  const panel = el('aside', { class: 'drawer', 'aria-label': `Delivery ${a.id}` },
    el('div', { class: 'toolbar' }, el('h2', {}, `Delivery ${a.id}`), el('span', { class: 'spacer' }), resend, close),
    note,
    el('p', {}, `${a.profileId} · ${a.channel}:${a.event} · webhook-id ${a.webhookId}`),
    el('p', {}, `${time(a.at)} · status ${a.status ?? 'none'} · ${ms(a.latencyMs)} · attempt ${a.attempt} of ${a.maxAttempts}` +
                ` · ${a.outcome}${a.nextRetryAt ? ` · next retry ${time(a.nextRetryAt)}` : ''}`),
    a.error ? el('p', { class: 'error' }, a.error) : null,
    el('h2', {}, `Request: ${a.request.method} ${a.request.url}`),
    el('pre', { 'aria-label': 'Request headers' },
       Object.entries(a.request.headers).map(([k, v]) => `${k}: ${v}`).join('\n')),
    el('pre', { 'aria-label': 'Request body' }, a.request.body + (a.request.truncated ? ' …' : '')),
    el('h2', {}, `Response ${a.response.status ?? ''}`),
    el('pre', { 'aria-label': 'Response body' }, a.response.body + (a.response.truncated ? ' …' : '')));
  close.addEventListener('click', () => panel.remove());
  resend.addEventListener('click', async () => {
    const r = await api.call('POST', `/v1/deliveries/${a.id}/resend`);
    note.textContent = r.ok ? 'queued again' : api.errorOf(r).text;
  });
  document.querySelector('.drawer')?.remove();
  document.body.append(panel);
  close.focus();
}

function live(main) {
  const status = el('select', { 'aria-label': 'Status' },
    ['', '2xx', '4xx', '5xx', 'error'].map((s) => el('option', { value: s }, s || 'any status')));
  const profile = el('input', { placeholder: 'profile id', 'aria-label': 'Profile' });
  const event = el('input', { placeholder: 'EVENT or CHANNEL:EVENT', 'aria-label': 'Event' });
  const pause = el('button', { type: 'button', 'aria-pressed': 'false' }, 'Pause');
  const dropped = el('span', { class: 'muted', role: 'status' });
  const body = el('div');
  main.append(el('div', { class: 'toolbar' }, status, profile, event, pause, dropped), body);
  let rows = [];
  let paused = false;
  const draw = () => body.replaceChildren(rows.length
    ? table(['At', 'Status', 'Latency', 'Profile', 'Event', 'Webhook id', 'Attempt', 'Outcome'],
            rows.map((a) => ({
              a, testid: `delivery-${a.id}`,
              cells: [time(a.at), el('span', { class: a.status >= 200 && a.status < 300 ? 'ok' : 'bad' }, a.status ?? 'error'),
                      ms(a.latencyMs), a.profileId, `${a.channel}:${a.event}`, a.webhookId,
                      `${a.attempt}/${a.maxAttempts}`, a.outcome],
            })), (r) => drawer(r.a))
    : el('p', { class: 'muted' }, 'Waiting for deliveries…'));
  const connect = async () => {
    abort?.abort();
    abort = new AbortController();
    const q = new URLSearchParams();
    if (status.value) q.set('status', status.value);
    if (profile.value.trim()) q.set('profileId', profile.value.trim());
    if (event.value.trim()) q.set('event', event.value.trim());
    // The latest first, then what comes.
    const recent = await api.call('GET', `/v1/deliveries?limit=50&${q}`);
    rows = recent.ok ? recent.body.results : [];
    draw();
    if (recent.ok && rows.length) q.set('after', rows[0].id);
    api.stream(`/v1/deliveries/stream?${q}`, (line) => {
      if (line.dropped !== undefined) { dropped.textContent = `${line.dropped} not shown (sampled under load)`; return; }
      if (paused) return;
      rows.unshift(line);
      rows.length = Math.min(rows.length, MAX_ROWS);
      draw();
    }, abort.signal);
  };
  for (const input of [status, profile, event]) input.addEventListener('change', connect);
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
  });
  connect();
}

async function deadLetters(main) {
  const profiles = (await api.all('/subscriptions/1/profiles')).map((p) => p.profileId);
  const profile = el('select', { 'aria-label': 'Profile' }, el('option', { value: '' }, 'every profile'),
    profiles.map((p) => el('option', { value: p }, p)));
  const replay = el('button', { type: 'button', class: 'primary', disabled: true }, 'Replay');
  const note = el('span', { role: 'status' });
  const body = el('div');
  main.append(el('div', { class: 'toolbar' }, profile, replay, note), body);
  let letters = [];
  const load = async () => {
    letters = await api.all(`/v1/dead-letters${profile.value ? `?profileId=${encodeURIComponent(profile.value)}` : ''}`);
    body.replaceChildren(letters.length
      ? table(['Id', 'Profile', 'Event', 'Webhook id', 'Attempts', 'Last status', 'Error', 'Failed at'],
              letters.map((d) => ({ testid: `dead-letter-${d.id}`,
                cells: [d.id, d.profileId, `${d.channel}:${d.event}`, d.webhookId, d.attempts,
                        d.lastStatus || '–', d.lastError, time(d.failedAt)] })))
      : el('p', { class: 'muted', 'data-testid': 'no-dead-letters' }, 'No dead letters.'));
    // A replay is per profile (as the API's): choose one.
    replay.disabled = !profile.value || letters.length === 0;
    replay.textContent = profile.value ? `Replay ${letters.length}` : 'Replay (choose a profile)';
  };
  profile.addEventListener('change', load);
  replay.addEventListener('click', async () => {
    const n = letters.length;
    if (!await confirm(`Replay ${n} dead letter(s) of profile ${profile.value}? Each is delivered again with its original webhook-id.`, `Replay ${n}`)) return;
    const r = await api.call('POST', '/v1/dead-letters/replay', { profileId: profile.value });
    note.textContent = r.ok ? `replayed ${r.body.replayed}` : api.errorOf(r).text;
    load();
  });
  await load();
  // A replayed letter leaves the store once delivered: the list follows it.
  refresh = setInterval(() => { if (!document.hidden) load(); }, 2000);
}

export async function render(main, { args }) {
  const tab = args[0] === 'dead-letters' ? 'dead-letters' : 'live';
  const tabs = el('div', { class: 'tabs', role: 'tablist' },
    el('button', { type: 'button', role: 'tab', 'aria-selected': String(tab === 'live'),
                   onclick: () => { location.hash = '#/deliveries'; } }, 'Live'),
    el('button', { type: 'button', role: 'tab', 'aria-selected': String(tab === 'dead-letters'),
                   onclick: () => { location.hash = '#/deliveries/dead-letters'; } }, 'Dead letters'));
  main.append(el('h1', {}, 'Deliveries'), tabs);
  if (tab === 'live') live(main); else await deadLetters(main);
}

export function dispose() {
  abort?.abort();
  abort = null;
  clearInterval(refresh);
  refresh = null;
  document.querySelector('.drawer')?.remove();
}
