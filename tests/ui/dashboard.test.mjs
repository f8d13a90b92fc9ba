// The dashboard in a real browser (DESIGN §9): playwright-core drives Debian's chromium against a
// real heraldd and a real webhook receiver that checks signatures with the reference
// standardwebhooks package. Run by ctest (tests/ui/CMakeLists.txt) with HERALDD (the binary),
// HERALD_NPM (where tools/test.sh installed the packages) and HERALD_SCREENSHOTS (where the
// screenshots go).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import path from 'node:path';

const npm = process.env.HERALD_NPM;
assert.ok(npm, 'HERALD_NPM is not set: run the test through ctest (tools/test.sh installs the packages)');
const require = createRequire(path.join(npm, 'package.json'));
const { chromium } = require('playwright-core');
const { Webhook } = require('standardwebhooks');
const shots = process.env.HERALD_SCREENSHOTS ?? path.join(tmpdir(), 'herald-screenshots');
mkdirSync(shots, { recursive: true });

const KEY = 'ui-test-key';
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

// A receiver: /ok answers 200 and verifies each signature, /fail answers 500, /picky answers what
// `pickyStatus` says.
function startSink() {
  const sink = { verified: 0, unverified: 0, picky: 0, pickyStatus: 400 };
  const verifier = new Webhook(SECRET);
  sink.server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (req.url === '/fail') { res.writeHead(500); res.end('database down'); return; }
      if (req.url === '/gone') { res.writeHead(410); res.end(); return; }
      if (req.url === '/picky') { ++sink.picky; res.writeHead(sink.pickyStatus); res.end('{}'); return; }
      try { verifier.verify(body, req.headers); ++sink.verified; } catch { ++sink.unverified; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"received":true}');
    });
  });
  return new Promise((resolve) => sink.server.listen(0, '127.0.0.1', () => {
    sink.url = (p) => `http://127.0.0.1:${sink.server.address().port}${p}`;
    resolve(sink);
  }));
}

function startHeraldd(dataDir) {
  const child = spawn(process.env.HERALDD, ['--listen', '127.0.0.1:0', '--api-key', KEY,
    '--allow-private-targets', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.on('data', () => {});  // drained
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) resolve({ child, base: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`heraldd exited with ${code}: ${out}`)));
  });
}

async function until(what, fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the dashboard: sign in, subscribe, send, see it flow, see who fails, replay a dead letter', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'herald-ui-'));
  const sink = await startSink();
  const { child, base } = await startHeraldd(dataDir);
  const api = async (method, p, body) => {
    const r = await fetch(base + p, { method, headers: { authorization: `App ${KEY}`, 'content-type': 'application/json' },
                                      body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  const browser = await chromium.launch({ executablePath: process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium',
                                          headless: true, args: ['--no-sandbox'] });
  t.after(async () => {
    await browser.close();
    child.kill('SIGTERM');
    sink.server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // A signed profile for the form to pick, and two that will misbehave.
  assert.equal((await api('POST', '/subscriptions/1/security',
    { authId: 'sink-hmac', type: 'HMAC', credentials: { secretKey: SECRET, algorithm: 'HMAC_SHA_256' } })).status, 201);
  assert.equal((await api('POST', '/subscriptions/1/profiles',
    { profileId: 'shop', webhook: { notifyUrl: sink.url('/ok') }, security: { authId: 'sink-hmac' } })).status, 201);
  for (const [id, p, retry] of [['flaky', '/fail', { delaysMs: [60000], maxAttempts: 5 }],
                                ['picky', '/picky', { delaysMs: [10], maxAttempts: 1 }],
                                ['gone', '/gone', { delaysMs: [10], maxAttempts: 1 }]]) {
    assert.equal((await api('POST', '/subscriptions/1/subscription/SMS', {
      subscriptionId: `${id}-dlr`, group: id, events: ['DELIVERY'],
      profile: { profileId: id, webhook: { notifyUrl: sink.url(p) }, retry } })).status, 201);
  }

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, timezoneId: 'UTC', locale: 'en-US' });
  // Nothing leaves the machine.
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1'
    ? route.continue() : route.abort()));
  const page = await context.newPage();
  page.setDefaultTimeout(20000);  // a loaded CI machine runs the sanitized heraldd slowly
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const nav = (name) => page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name, exact: true }).click();

  await t.test('signs in with the key', async () => {
    await page.goto(`${base}/ui/`);
    await page.getByLabel('API key').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key was refused.').waitFor();
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    // The refused key's 401s are the browser's own console lines; from here on none is expected.
    problems.length = 0;
  });

  await t.test('creates a subscription through the form, with field errors from the API', async () => {
    await nav('Subscriptions');
    await page.getByRole('button', { name: 'New subscription' }).click();
    const dialog = page.getByRole('dialog', { name: 'New subscription' });
    await dialog.getByRole('button', { name: 'Create subscription' }).click();  // nothing filled in
    await dialog.locator('[data-error-for="subscriptionId"]').filter({ hasText: /\S/ }).waitFor();
    problems.length = 0;  // that 400 was asked for: the browser logs it as a console line
    await dialog.getByLabel('Subscription ID').fill('shop-dlr');
    await dialog.getByLabel('Channel').selectOption('SMS');
    await dialog.getByLabel(/DELIVERY — Delivery \/ 配達/).check();
    await dialog.getByLabel('Notify', { exact: true }).selectOption('existing');
    await dialog.getByLabel('Existing profile').selectOption('shop');
    await dialog.getByRole('button', { name: 'Create subscription' }).click();
    await page.locator('[data-testid="sub-shop-dlr"]').waitFor();
    const stored = await api('GET', '/subscriptions/1/subscription/SMS/shop-dlr');
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.events, ['DELIVERY']);
    assert.equal(stored.body.profile.profileId, 'shop');
    await shot('subscriptions');
  });

  await t.test('explains and sends an event from the catalog, and the counters move', async () => {
    await nav('Catalog & Send');
    await page.getByLabel('Search events').fill('配達');
    await page.locator('[data-testid="event-SMS-DELIVERY"]').click();
    const payload = page.getByLabel('Payload');
    await until('the example payload', async () => (await payload.inputValue()).includes('DELIVERED_TO_HANDSET'));
    await page.getByLabel('Event ID').fill('ui-1');
    await page.getByRole('button', { name: 'Explain routing' }).click();
    await page.getByRole('cell', { name: 'shop-dlr' }).waitFor();
    await shot('catalog');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.getByTestId('sent').waitFor();
    assert.equal((await api('POST', '/v1/events', { channel: 'SMS', event: 'DELIVERY', eventId: 'api-1', payload: { n: 2 } })).status, 202);
    await nav('Overview');
    await page.waitForFunction(() => {
      const n = (id) => Number(document.querySelector(`[data-testid="${id}"]`)?.textContent.replace(/,/g, ''));
      return n('events-total') >= 2 && n('deliveries-ok') >= 2;
    }, null, { timeout: 15000 });
    await until('two signed deliveries', () => sink.verified >= 2);
    assert.equal(sink.unverified, 0);
  });

  await t.test('flags the failing profile with its last error on every page', async () => {
    await nav('Profiles');
    const row = page.locator('[data-testid="profile-flaky"]');
    await row.getByText('HTTP 500: database down').waitFor();
    assert.match(await row.locator('[data-state]').textContent(), /failing|circuit-open/);
    await page.locator('[data-testid="profile-shop"]').getByText('100.0 %').waitFor();
    await shot('profiles');
    for (const view of ['Overview', 'Subscriptions', 'Deliveries']) {
      await nav(view);
      await page.getByTestId('unhealthy-flaky').waitFor();
    }
    await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
    await page.locator('[data-testid^="delivery-"]').first().click();
    await page.getByLabel('Request body').waitFor();
    await shot('deliveries');
    await page.getByRole('button', { name: 'Close' }).click();
  });

  await t.test('re-enables a profile its receiver disabled with 410', async () => {
    await nav('Profiles');
    await page.locator('[data-testid="profile-gone"] [data-state="disabled"]').waitFor();
    await page.locator('[data-testid="profile-gone"]').click();
    await page.getByRole('heading', { name: 'Profile gone' }).waitFor();
    await page.getByRole('button', { name: 'Re-enable' }).click();
    await page.getByText('enabled again').waitFor();
    const profile = await api('GET', '/subscriptions/1/profiles/gone');
    assert.equal(profile.body.disabled, false);
  });

  await t.test('replays a dead letter after confirming', async () => {
    await until('picky to dead-letter its event', async () =>
      (await api('GET', '/v1/dead-letters?profileId=picky')).body.paging.totalResults >= 2);
    sink.pickyStatus = 200;
    const before = sink.picky;
    await nav('Deliveries');
    await page.getByRole('tab', { name: 'Dead letters' }).click();
    await page.getByLabel('Profile', { exact: true }).selectOption('picky');
    await page.getByRole('button', { name: 'Replay 2' }).click();
    const confirm = page.getByRole('dialog');
    await confirm.getByText('Replay 2 dead letter(s) of profile picky?').waitFor();
    await shot('dead-letters');
    await confirm.getByRole('button', { name: 'Replay 2' }).click();
    await page.getByTestId('no-dead-letters').waitFor({ timeout: 15000 });
    await until('the replayed requests', () => sink.picky >= before + 1);
    assert.equal((await api('GET', '/v1/dead-letters?profileId=picky')).body.paging.totalResults, 0);
  });

  await t.test('has a dark theme', async () => {
    await nav('Overview');
    await page.getByRole('button', { name: 'Switch between light and dark theme' }).click();
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    await page.waitForTimeout(1500);  // a few points on the charts
    await shot('overview-dark');
    await page.getByRole('button', { name: 'Switch between light and dark theme' }).click();
    await shot('overview');
  });

  await t.test('logged no console or page errors', () => {
    assert.deepEqual(problems, []);
  });
});
