// Catalog & Send: every event with its English and Japanese names and how many subscriptions
// take it; an event's example payload to edit, explain (routing without delivering) and send.
import * as api from './api.js';
import { el, table } from './ui.js';

async function counts(channels) {
  const subs = (await Promise.all(channels.map((c) =>
    api.all(`/subscriptions/1/subscription/${encodeURIComponent(c.channel)}`)))).flat();
  const out = new Map();
  for (const s of subs) {
    const ch = channels.find((c) => c.channel === s.channel);
    const events = s.events.length ? s.events.map((e) => (typeof e === 'string' ? e : e.event))
                                    : ch.events.map((e) => e.event);
    for (const e of events) out.set(`${s.channel}:${e}`, (out.get(`${s.channel}:${e}`) ?? 0) + 1);
  }
  return out;
}

function sender(panel, channel, event) {
  const input = (name, label) => el('label', {}, label, el('input', { name, 'aria-label': label }));
  const payload = el('textarea', { rows: 14, 'aria-label': 'Payload', spellcheck: 'false' });
  const explain = el('button', { type: 'button' }, 'Explain routing');
  const send = el('button', { type: 'button', class: 'primary' }, 'Send');
  const result = el('div', { role: 'status', 'aria-label': 'Result' });
  const fields = el('div', { class: 'split' },
    input('eventId', 'Event ID'), input('applicationId', 'Application ID'),
    input('entityId', 'Entity ID'), input('resource', 'Resource'), input('user', 'User'), input('key', 'Key'));
  panel.replaceChildren(el('h2', {}, `${channel.name} · ${event.name} / ${event.nameJa}`),
    el('p', { class: 'muted' }, `${channel.channel} ${event.event}`), fields,
    el('label', {}, 'Payload', payload), el('div', { class: 'toolbar' }, explain, send), result);
  api.call('GET', `/v1/catalog/${encodeURIComponent(channel.channel)}/${encodeURIComponent(event.event)}/example`)
    .then((r) => { payload.value = JSON.stringify(r.body, null, 2); });
  const envelope = () => {
    let body;
    try { body = JSON.parse(payload.value); } catch (e) {
      result.replaceChildren(el('p', { class: 'error' }, `The payload is not JSON: ${e.message}`));
      return null;
    }
    const env = { channel: channel.channel, event: event.event, payload: body };
    for (const i of fields.querySelectorAll('input')) if (i.value.trim()) env[i.name] = i.value.trim();
    return env;
  };
  explain.addEventListener('click', async () => {
    const env = envelope();
    if (!env) return;
    const r = await api.call('POST', '/v1/route/explain', env);
    if (!r.ok) { result.replaceChildren(el('p', { class: 'error' }, api.errorOf(r).text)); return; }
    result.replaceChildren(
      r.body.matches.length
        ? table(['Subscription', 'Group', 'Specificity', 'Winner', 'Profile'],
                r.body.matches.map((m) => ({ cells: [m.subscriptionId, m.group || '–', m.specificity,
                                                     m.winner ? 'yes' : 'no', m.profileId] })))
        : el('p', {}, 'No subscription matches this event.'),
      el('p', {}, `Notified: ${r.body.profiles.map((p) => `${p.profileId} (${p.state})`).join(', ') || 'nobody'}`));
  });
  send.addEventListener('click', async () => {
    const env = envelope();
    if (!env) return;
    const r = await api.call('POST', '/v1/events', env);
    result.replaceChildren(r.ok
      ? el('p', { class: 'ok', 'data-testid': 'sent' }, `Accepted (${r.body.accepted})`)
      : el('p', { class: 'error' }, r.body?.errors?.[0]?.error ?? api.errorOf(r).text));
  });
}

export async function render(main) {
  const channels = (await api.call('GET', '/v1/catalog')).body.channels;
  const used = await counts(channels);
  const search = el('input', { type: 'search', placeholder: 'search: channel, event, name, 日本語',
                               'aria-label': 'Search events' });
  const list = el('div');
  const panel = el('section', { class: 'panel', 'aria-label': 'Send an event' },
    el('p', { class: 'muted' }, 'Choose an event to see its example payload, explain its routing and send it.'));
  main.append(el('h1', {}, 'Catalog & Send'), el('div', { class: 'toolbar' }, search),
              el('div', { class: 'split' }, list, panel));
  const draw = () => {
    const q = search.value.toLowerCase();
    const rows = [];
    for (const c of channels) {
      for (const e of c.events) {
        const text = `${c.channel} ${c.name} ${e.event} ${e.name} ${e.nameJa}`.toLowerCase();
        if (q && !text.includes(q)) continue;
        rows.push({ c, e, testid: `event-${c.channel}-${e.event}`,
                    cells: [c.channel, e.event, e.name, e.nameJa, used.get(`${c.channel}:${e.event}`) ?? 0] });
      }
    }
    list.replaceChildren(table(['Channel', 'Event', 'Name', '日本語', 'Subscriptions'], rows.slice(0, 300),
                               (r) => sender(panel, r.c, r.e)));
  };
  search.addEventListener('input', draw);
  draw();
}

export function dispose() {}
