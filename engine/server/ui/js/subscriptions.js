// Subscriptions: filtered, paged list; create and edit in the platform's flow (id, channel,
// events with their English and Japanese names, an existing profile or a new notifyUrl,
// filters), with the API's validationErrors shown beside each field.
import * as api from './api.js';
import { el, table } from './ui.js';

const PAGE = 20;
let catalog = null;

async function loadCatalog() {
  if (!catalog) catalog = (await api.call('GET', '/v1/catalog')).body.channels;
  return catalog;
}

const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);

function describeFilters(s) {
  const parts = s.criteria.map((c) => [c.applicationId && `app=${c.applicationId}`,
                                       c.entityId && `entity=${c.entityId}`].filter(Boolean).join('/'));
  if (s.resources.length) parts.push(`resources=${s.resources.join(',')}`);
  if (s.users.length) parts.push(`users=${s.users.join(',')}`);
  return parts.join(' ') || '–';
}

// The create/edit dialog; resolves when it closes, true when something was saved.
async function editor(existing) {
  const channels = await loadCatalog();
  const profiles = await api.all('/subscriptions/1/profiles');
  const field = (name, label, input, control = input) => [
    el('label', { for: control.id }, label),
    el('div', { 'data-field': name }, input, el('span', { class: 'field-error', 'data-error-for': name })),
  ];
  const id = el('input', { id: 'f-subscriptionId', value: existing?.subscriptionId ?? '' });
  if (existing) id.readOnly = true;
  const channel = el('select', { id: 'f-channel' },
    channels.map((c) => el('option', { value: c.channel, selected: existing?.channel === c.channel },
                           `${c.name} (${c.channel})`)));
  if (existing) channel.disabled = true;
  const events = el('fieldset', { class: 'events', id: 'f-events', 'aria-label': 'Events' });
  const fillEvents = () => {
    const ch = channels.find((c) => c.channel === channel.value);
    const chosen = new Set((existing?.events ?? []).map((e) => (typeof e === 'string' ? e : e.event)));
    events.replaceChildren(...ch.events.map((e) => el('label', {},
      el('input', { type: 'checkbox', name: 'event', value: e.event, checked: chosen.has(e.event) }),
      ` ${e.event} — ${e.name} / ${e.nameJa}`)));
  };
  channel.addEventListener('change', fillEvents);
  fillEvents();
  const mode = el('select', { id: 'f-profile-mode' },
    el('option', { value: 'existing' }, 'an existing profile'),
    el('option', { value: 'new', selected: profiles.length === 0 }, 'a new profile'));
  const existingProfile = el('select', { id: 'f-profileId', 'aria-label': 'Existing profile' },
    profiles.map((p) => el('option', { value: p.profileId, selected: existing?.profile?.profileId === p.profileId },
                           `${p.profileId} → ${p.webhook?.notifyUrl ?? ''}`)));
  const newId = el('input', { id: 'f-new-profileId', placeholder: 'profile id', 'aria-label': 'New profile ID' });
  const notifyUrl = el('input', { id: 'f-notifyUrl', type: 'url', placeholder: 'https://…/webhook',
                                  'aria-label': 'Notify URL' });
  const newBox = el('div', {}, newId, ' ', notifyUrl);
  const sync = () => {
    existingProfile.hidden = mode.value !== 'existing';
    newBox.hidden = mode.value !== 'new';
  };
  mode.addEventListener('change', sync);
  sync();
  const crit = existing?.criteria?.[0] ?? {};
  const group = el('input', { id: 'f-group', value: existing?.group ?? '' });
  const app = el('input', { id: 'f-applicationId', value: crit.applicationId ?? '' });
  const entity = el('input', { id: 'f-entityId', value: crit.entityId ?? '' });
  const resources = el('input', { id: 'f-resources', value: (existing?.resources ?? []).join(', ') });
  const users = el('input', { id: 'f-users', value: (existing?.users ?? []).join(', ') });
  const general = el('p', { class: 'error', role: 'alert' });
  const save = el('button', { type: 'submit', class: 'primary' }, existing ? 'Save changes' : 'Create subscription');
  const cancel = el('button', { type: 'button' }, 'Cancel');
  const form = el('form', {},
    el('h2', {}, existing ? `Edit ${existing.subscriptionId}` : 'New subscription'),
    el('div', { class: 'form-grid' },
      field('subscriptionId', 'Subscription ID', id),
      field('channel', 'Channel', channel),
      field('events', 'Events', events),
      field('profile', 'Notify', el('div', {}, mode, ' ', existingProfile, newBox,
        el('span', { class: 'field-error', 'data-error-for': 'profile.profileId' }),
        el('span', { class: 'field-error', 'data-error-for': 'profile.webhook.notifyUrl' })), mode),
      field('group', 'Group', group),
      field('criteria', 'Application ID', app),
      field('entityId', 'Entity ID', entity),
      field('resources', 'Resources', resources),
      field('users', 'Users', users)),
    general, el('div', { class: 'buttons' }, cancel, save));
  const dialog = el('dialog', { 'aria-label': existing ? 'Edit subscription' : 'New subscription' }, form);
  document.body.append(dialog);
  dialog.showModal();
  return new Promise((resolve) => {
    cancel.addEventListener('click', () => { dialog.close(); dialog.remove(); resolve(false); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      for (const s of form.querySelectorAll('[data-error-for]')) s.textContent = '';
      general.textContent = '';
      const body = {
        subscriptionId: id.value.trim(),
        events: [...events.querySelectorAll('input:checked')].map((i) => i.value),
        criteria: app.value || entity.value
          ? [{ ...(app.value && { applicationId: app.value.trim() }), ...(entity.value && { entityId: entity.value.trim() }) }]
          : [],
        resources: list(resources.value),
        users: list(users.value),
        profile: mode.value === 'existing'
          ? { profileId: existingProfile.value }
          : { profileId: newId.value.trim(), webhook: { notifyUrl: notifyUrl.value.trim() } },
      };
      if (group.value.trim()) body.group = group.value.trim();
      const path = `/subscriptions/1/subscription/${encodeURIComponent(channel.value)}`;
      const r = existing
        ? await api.call('PUT', `${path}/${encodeURIComponent(existing.subscriptionId)}`, body)
        : await api.call('POST', path, body);
      if (r.ok) { dialog.close(); dialog.remove(); resolve(true); return; }
      const { text, fields } = api.errorOf(r);
      let placed = false;
      for (const [name, messages] of Object.entries(fields)) {
        const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`) ??
                     form.querySelector(`[data-error-for="${CSS.escape(name.split('.')[0])}"]`);
        if (slot) { slot.textContent = messages.join('; '); placed = true; }
      }
      if (!placed) general.textContent = text;
    });
  });
}

export async function render(main) {
  const channels = await loadCatalog();
  const channel = el('select', { 'aria-label': 'Channel' }, el('option', { value: '' }, 'All channels'),
    channels.map((c) => el('option', { value: c.channel }, c.name)));
  const search = el('input', { type: 'search', placeholder: 'filter by id or profile', 'aria-label': 'Filter' });
  const create = el('button', { type: 'button', class: 'primary' }, 'New subscription');
  const body = el('div');
  const pager = el('div', { class: 'pager' });
  main.append(el('h1', {}, 'Subscriptions'), el('div', { class: 'toolbar' }, channel, search, create), body, pager);
  let rows = [];
  let page = 0;
  const draw = () => {
    const q = search.value.toLowerCase();
    const shown = rows.filter((s) => !q || s.subscriptionId.toLowerCase().includes(q) ||
                                     s.profile.profileId.toLowerCase().includes(q));
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(page, pages - 1);
    body.replaceChildren(shown.length ? table(
      ['ID', 'Channel', 'Events', 'Group', 'Profile', 'Filters', ''],
      shown.slice(page * PAGE, (page + 1) * PAGE).map((s) => ({
        testid: `sub-${s.subscriptionId}`,
        cells: [s.subscriptionId, s.channel,
                s.events.length ? s.events.map((e) => (typeof e === 'string' ? e : e.event)).join(', ') : 'all',
                s.group || '–', s.profile.profileId, describeFilters(s),
                el('span', {},
                  el('button', { type: 'button', 'aria-label': `Edit ${s.subscriptionId}`,
                                 onclick: async () => { if (await editor(s)) load(); } }, 'Edit'), ' ',
                  el('button', { type: 'button', 'aria-label': `Delete ${s.subscriptionId}`,
                                 onclick: async () => {
                                   await api.call('DELETE', `/subscriptions/1/subscription/${encodeURIComponent(s.channel)}/${encodeURIComponent(s.subscriptionId)}`);
                                   load();
                                 } }, 'Delete'))],
      }))) : el('p', { class: 'muted' }, 'No subscriptions.'));
    pager.replaceChildren(
      el('button', { type: 'button', disabled: page === 0, onclick: () => { --page; draw(); } }, 'Previous'),
      el('span', {}, `page ${page + 1} of ${pages} (${shown.length})`),
      el('button', { type: 'button', disabled: page + 1 >= pages, onclick: () => { ++page; draw(); } }, 'Next'));
  };
  const load = async () => {
    const wanted = channel.value ? [channel.value] : channels.map((c) => c.channel);
    const lists = await Promise.all(wanted.map((c) => api.all(`/subscriptions/1/subscription/${encodeURIComponent(c)}`)));
    rows = lists.flat();
    draw();
  };
  channel.addEventListener('change', () => { page = 0; load(); });
  search.addEventListener('input', () => { page = 0; draw(); });
  create.addEventListener('click', async () => { if (await editor(null)) load(); });
  await load();
}

export function dispose() {}
