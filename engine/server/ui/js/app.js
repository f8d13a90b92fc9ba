// The dashboard's shell: sign-in, theme, hash routes, and the stats stream every view reads
// (the latest snapshot and five minutes of history), with the strip of profiles needing
// attention on every page.
import * as api from './api.js';
import { el } from './ui.js';
import * as overview from './overview.js';
import * as profiles from './profiles.js';
import * as subscriptions from './subscriptions.js';
import * as deliveries from './deliveries.js';
import * as catalog from './catalog.js';

const views = { overview, profiles, subscriptions, deliveries, catalog };

// The stats feed: `latest` snapshot, `history` of {t, snapshot} (five minutes), listeners.
export const feed = {
  latest: null,
  history: [],
  listeners: new Set(),
  on(fn) { this.listeners.add(fn); if (this.latest) fn(this.latest); return () => this.listeners.delete(fn); },
};

let feedAbort = null;
function startFeed() {
  feedAbort?.abort();
  feedAbort = new AbortController();
  const live = document.getElementById('live');
  api.stream('/v1/stats/stream', (snapshot) => {
    // A counter that fell: heraldd restarted; the history starts again.
    const prev = feed.latest;
    if (prev && snapshot.counters.accepted < prev.counters.accepted) feed.history = [];
    feed.latest = snapshot;
    feed.history.push({ t: snapshot.at / 1000, s: snapshot });
    while (feed.history.length > 300) feed.history.shift();
    renderStrip(snapshot);
    for (const fn of feed.listeners) fn(snapshot);
  }, feedAbort.signal, (on) => {
    live.textContent = on ? 'live' : 'reconnecting…';
    live.classList.toggle('on', on);
  });
}

function renderStrip(snapshot) {
  const strip = document.getElementById('unhealthy');
  const bad = snapshot.profiles.filter((p) => p.state !== 'healthy');
  strip.hidden = bad.length === 0;
  strip.replaceChildren(...bad.map((p) => el('span', { 'data-testid': `unhealthy-${p.profileId}` },
    el('a', { href: `#/profiles/${encodeURIComponent(p.profileId)}` }, p.profileId),
    ` ${p.state}`, p.lastError ? `: ${p.lastError.message}` : '')));
}

let current = null;
async function route() {
  const [name = 'overview', ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const view = views[name] ?? overview;
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.view === name);
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  current?.dispose?.();
  const main = document.getElementById('view');
  main.replaceChildren();
  current = view;
  await view.render(main, { feed, args: rest.map(decodeURIComponent) });
}

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem('herald.theme', theme);
  const button = document.getElementById('theme');
  button.textContent = theme === 'dark' ? 'Light' : 'Dark';
}

async function signIn() {
  const dialog = document.getElementById('login');
  const form = document.getElementById('login-form');
  const input = document.getElementById('login-key');
  const error = document.getElementById('login-error');
  for (;;) {
    // A key that works (or none when heraldd needs none) opens the dashboard.
    const probe = await api.call('GET', '/v1/stats', undefined, undefined, true);
    if (probe.ok) { if (dialog.open) dialog.close(); return; }
    if (probe.status !== 401 && probe.status !== 403) {
      error.textContent = `heraldd answered ${probe.status}`;
    } else if (api.key()) {
      error.textContent = 'That key was refused.';
    }
    if (!dialog.open) dialog.showModal();
    input.focus();
    await new Promise((resolve) => form.addEventListener('submit', (e) => {
      e.preventDefault();
      api.setKey(input.value);
      resolve();
    }, { once: true }));
  }
}

async function main() {
  setTheme(localStorage.getItem('herald.theme') ??
           (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
  document.getElementById('theme').addEventListener('click', () =>
    setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark'));
  document.getElementById('logout').addEventListener('click', () => {
    api.clearKey();
    location.reload();
  });
  // The login dialog is not dismissed with Escape: without a key nothing works.
  document.getElementById('login').addEventListener('cancel', (e) => e.preventDefault());
  // A key refused later (heraldd restarted with another): sign in again, once at a time.
  let signingIn = false;
  api.whenUnauthorized(() => {
    if (signingIn) return;
    signingIn = true;
    feedAbort?.abort();
    signIn().then(() => { signingIn = false; startFeed(); route(); });
  });
  await signIn();
  startFeed();
  window.addEventListener('hashchange', route);
  await route();
}

main();
