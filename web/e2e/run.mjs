// Browser tests of the console: playwright-core drives Debian's chromium against a real `it0 serve` with a
// real sshd and a local model speaking the Anthropic wire format (started by ./stack). Screenshots of each
// page go to e2e/artifacts/ (not committed). Prints "N passed, N failed"; exits non-zero on any failure.
// Without chromium the run is skipped locally and fails under CI=true.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const art = join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CI = process.env.CI === 'true';

if (!existsSync(CHROMIUM)) {
  console.log(`chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  process.exit(CI ? 1 : 0);
}
mkdirSync(join(art, 'bin'), { recursive: true });
const it0 = join(art, 'bin', 'it0');
const stackBin = join(art, 'bin', 'stack');
console.log('building it0 and the test stack');
execFileSync('go', ['build', '-o', it0, './cmd/it0'], { cwd: repo, stdio: 'inherit' });
execFileSync('go', ['build', '-o', stackBin, './web/e2e/stack'], { cwd: repo, stdio: 'inherit' });

const stack = spawn(stackBin, ['-it0', it0], { stdio: ['pipe', 'pipe', 'inherit'] });
// The stack prints JSON lines: where everything is, then {"restarted":true} after each restart.
const stackLines = [];
let lineWaiter = null;
createInterface({ input: stack.stdout }).on('line', (l) => {
  stackLines.push(l);
  lineWaiter?.();
});
async function nextStackLine(ms) {
  const deadline = Date.now() + ms;
  while (!stackLines.length) {
    if (Date.now() > deadline) throw new Error('the stack printed nothing in ' + ms / 1000 + ' s');
    await new Promise((ok) => {
      lineWaiter = ok;
      setTimeout(ok, 500);
    });
  }
  return JSON.parse(stackLines.shift());
}
stack.once('exit', (c) => console.log('stack exited with ' + c));
const info = await nextStackLine(120_000);

const profile = mkdtempSync(join(tmpdir(), 'it0-chromium-'));
// The fake microphone says "yes" (espeak-ng), then is silent for 2.5 s, over and over: the first "yes" is a
// turn, a later one lands while the agent speaks its long reply (a barge-in).
const wav = join(profile, 'yes.wav');
if (info.voice) writeFileSync(wav, padWav(execFileSync('espeak-ng', ['--stdout', '-v', 'en-us', '-s', '140', 'yes']), 2.5));

// A fresh profile directory each run (playwright passes it as --user-data-dir). The console keeps its token in
// page memory, so two pages of this one context are two independent sessions (admin and viewer).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 900 },
  locale: 'en-US',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--autoplay-policy=no-user-gesture-required', ...(info.voice ? ['--use-file-for-fake-audio-capture=' + wav] : [])],
});

const cspErrors = [];
async function newPage(width = 1280) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height: 900 });
  page.setDefaultTimeout(45_000); // generous: CI shares 2 cores with the Go suite
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) cspErrors.push(m.text());
  });
  page.on('pageerror', (e) => cspErrors.push('page error: ' + e.message));
  return page;
}

async function signIn(page, who, path = '/') {
  await page.goto(info.url + path);
  await page.getByLabel(/^(Email|邮箱)$/).fill(who.email);
  await page.getByLabel(/^(Password|密码)$/).fill(who.password);
  await page.getByRole('button', { name: /^(Sign in|登录)$/ }).click();
  await page.getByRole('navigation').waitFor();
}

const shot = (page, name) => page.screenshot({ path: join(art, name + '.png'), fullPage: true });

async function startTask(page, prompt) {
  await page.getByRole('navigation').getByRole('link', { name: /^(Chat|对话)$/ }).click();
  await page.getByRole('link', { name: /New task|新任务/ }).click();
  await page.getByRole('textbox', { name: /Tell the agent|告诉智能体/ }).fill(prompt);
  await page.getByRole('button', { name: /^(Send|发送)$/ }).click();
  await page.waitForURL(/\/chat\/.+/);
  return page.url().split('/chat/')[1];
}

// api calls the API from the test itself (to act while the browser is cut off, or to set up).
const tokens = new Map();
async function api(method, path, body, who = info.admin) {
  let tok = tokens.get(who.email);
  if (!tok || tok.at < Date.now() - 30_000) {
    const r = await fetch(info.url + '/api/v1/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: who.email, password: who.password }) });
    if (!r.ok) throw new Error('login: ' + r.status + ' ' + (await r.text()));
    tok = { token: (await r.json()).access_token, at: Date.now() };
    tokens.set(who.email, tok);
  }
  const r = await fetch(info.url + path, { method, headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + tok.token }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function until(what, ok, ms = 45_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await ok();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 250));
  }
}

// expectCount fails unless the locator matches exactly n elements (no lost, no duplicated events).
async function expectCount(loc, n, what) {
  const c = await loc.count();
  if (c !== n) throw new Error(`${what}: ${c} on the page, want ${n}`);
}

const results = [];
async function test(name, fn) {
  const start = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${Date.now() - start} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.message.split('\n').slice(0, 6).join('\n')}`);
  }
}

const admin = await newPage();
let l1Session = '';
let refreshes = 0;
admin.on('request', (r) => {
  if (r.method() === 'POST' && r.url().endsWith('/api/v1/auth/refresh')) refreshes++;
});

await test('sign in', async () => {
  await admin.goto(info.url + '/');
  await shot(admin, 'en-login');
  await signIn(admin, info.admin);
  const headers = (await admin.request.get(info.url + '/')).headers();
  if (!headers['content-security-policy']?.includes("script-src 'self'") || headers['x-frame-options'] !== 'DENY') throw new Error('security headers missing');
  const stored = await admin.evaluate(() => JSON.stringify(localStorage) + document.cookie);
  if (stored.includes('eyJ')) throw new Error('the token leaked into localStorage or a cookie');
});

// A second admin session whose refresh requests never reach the server (cut in this page only): its token
// really expires (tokens live one minute) while the page is open. Checked near the end.
const frozen = await newPage();
let frozenAt = 0;
let frozenRefreshes = 0;
await test('expired token: set up a session that cannot refresh', async () => {
  await frozen.route('**/api/v1/auth/refresh', (r) => (frozenRefreshes++, r.abort('internetdisconnected')));
  await signIn(frozen, info.admin);
  frozenAt = Date.now();
});

await test('chat: the model proposes an L1 command, the card approves it, output appears', async () => {
  l1Session = await startTask(admin, '[l1] write the marker file on web-1');
  const card = admin.locator('section.approval.pending');
  await card.waitFor();
  await admin.locator('.tool .risk-1').first().waitFor();
  await card.getByText(/Auto-approves in/).waitFor();
  await shot(admin, 'en-chat-approval');
  await card.getByRole('button', { name: 'Approve' }).click();
  await admin.locator('.output pre', { hasText: info.l1_marker }).waitFor();
  await admin.locator('.msg.agent', { hasText: 'Done: the step finished.' }).waitFor();
  await shot(admin, 'en-chat-approved');
});

await test('viewer sees the approval but no approve button', async () => {
  const viewer = await newPage(375);
  const sid = await startTask(admin, '[l1] a second marker, for the viewer');
  await admin.locator('section.approval.pending').waitFor();
  await signIn(viewer, info.viewer, '/chat/' + sid);
  const card = viewer.locator('section.approval.pending');
  await card.waitFor();
  await card.getByText('Your role can view but not decide.').waitFor();
  if ((await viewer.getByRole('button', { name: /^(Approve|Reject)$/ }).count()) !== 0) throw new Error('viewer has a decide button');
  await shot(viewer, 'en-viewer-375px');
  await viewer.close();
  // clean up: the admin rejects it (the reject path is tested next on its own)
  await admin.locator('section.approval.pending').getByRole('button', { name: 'Reject' }).click();
});

await test('chat: reject path', async () => {
  await startTask(admin, '[l1] propose it, I will reject');
  const card = admin.locator('section.approval.pending');
  await card.waitFor();
  await card.getByLabel('Reason (optional)').fill('not now');
  await card.getByRole('button', { name: 'Reject' }).click();
  await admin.locator('.msg.agent', { hasText: 'the command was rejected, so I did not run it' }).waitFor();
  await admin.locator('section.approval', { hasText: 'Rejected' }).waitFor();
  await shot(admin, 'en-chat-rejected');
});

await test('hostile tool output is shown as text, coloured and folded', async () => {
  await startTask(admin, '[html] print something nasty');
  const out = admin.locator('.output').last();
  await out.locator('pre', { hasText: '<img src=x onerror=alert(1)>' }).waitFor();
  await out.locator('span.a-fg2', { hasText: 'red' }).waitFor();
  if ((await admin.locator('.output img').count()) !== 0) throw new Error('tool output became HTML');
  await out.getByRole('button', { name: /Show all \(\d+ lines\)/ }).click();
  await out.locator('pre', { hasText: '40' }).waitFor();
  await shot(admin, 'en-chat-hostile-output');
});

await test('standing order: drafted in chat, confirmed, listed, paused and resumed', async () => {
  await startTask(admin, '[order] check disks every night');
  const draft = admin.locator('section.draft');
  await draft.getByText('Nightly disk check').waitFor();
  await draft.getByText('On schedule 0 2 * * * (UTC)').waitFor();
  await shot(admin, 'en-order-draft');
  await admin.locator('section.approval.pending').getByRole('button', { name: 'Confirm' }).click();
  await admin.locator('.msg.agent', { hasText: 'Done: the step finished.' }).waitFor();
  await admin.getByRole('navigation').getByRole('link', { name: 'Standing orders' }).click();
  const row = admin.locator('tr', { hasText: 'Nightly disk check' });
  await row.waitFor();
  await shot(admin, 'en-orders');
  await row.getByRole('link').click();
  await admin.getByRole('button', { name: 'Pause' }).click();
  await admin.locator('h1 .status-paused').waitFor();
  await admin.getByRole('button', { name: 'Resume' }).click();
  await admin.locator('h1 .status-active').waitFor();
  await shot(admin, 'en-order-detail');
});

await test('audit: verify chain shows ok', async () => {
  await admin.getByRole('navigation').getByRole('link', { name: 'Audit' }).click();
  await admin.getByRole('button', { name: 'Verify chain' }).click();
  await admin.locator('.verify.ok', { hasText: /Chain intact: \d+ records verified/ }).waitFor();
  await shot(admin, 'en-audit');
});

await test('escalations: add a contact, test-send in the app reaches the feed, edit a policy', async () => {
  await admin.getByRole('navigation').getByRole('link', { name: 'Escalations' }).click();
  await admin.getByRole('button', { name: 'Add contact' }).click();
  const form = admin.getByRole('form', { name: 'Add contact' });
  await form.getByLabel('Name').fill('E2E on call');
  await form.getByLabel('Phone (E.164)').fill('13800001111');
  await form.getByRole('button', { name: 'Save' }).click();
  await form.locator('.field.invalid', { hasText: 'E.164' }).waitFor(); // the API's error, at its field
  await form.getByLabel('Phone (E.164)').fill('+8613800001111');
  await form.getByLabel('This is me (in-app notices)').check();
  await form.getByRole('button', { name: 'Save' }).click();
  const row = admin.locator('tr[data-contact="E2E on call"]');
  await row.waitFor();
  // In-app: the admin's own alert feed receives it.
  await row.getByRole('button', { name: 'Test send to E2E on call on app' }).click();
  await row.locator('li[data-channel="app"] .delivery', { hasText: 'Sent' }).waitFor();
  await admin.getByRole('button', { name: 'Alerts' }).click();
  await admin.locator('.feed-list li', { hasText: 'IT0 test message' }).waitFor();
  await admin.getByRole('button', { name: 'Alerts' }).click();
  // SMS is not configured here: the message is recorded as skipped, with the reason.
  await row.getByRole('button', { name: 'Test send to E2E on call on sms' }).click();
  await row.locator('li[data-channel="sms"] .delivery', { hasText: /Skipped: .*not configured/ }).waitFor();
  // Twice within 30 s: refused with when to try again.
  await row.getByRole('button', { name: 'Test send to E2E on call on app' }).click();
  await row.locator('li[data-channel="app"] .field-error', { hasText: /try again in \d+ seconds/ }).waitFor();
  const msgs = await api('GET', '/api/v1/comm/messages?channel=app');
  if (!msgs.items.some((m) => m.body.includes('test message') && m.status === 'sent')) throw new Error('no sent test message: ' + JSON.stringify(msgs.items));
  await shot(admin, 'en-escalations-contacts');
  // Policy: a step without channels is refused at that field; then saved.
  await admin.getByRole('button', { name: 'Edit the warning policy' }).click();
  const pol = admin.getByRole('form', { name: 'Edit the warning policy' });
  await pol.getByRole('button', { name: 'Add step' }).click();
  const steps = pol.locator('fieldset.step');
  const last = steps.last();
  await last.getByLabel('Delay (seconds)').fill('900');
  await last.getByRole('checkbox', { name: 'sms' }).uncheck();
  await pol.getByRole('button', { name: 'Save' }).click();
  await last.locator('.field.invalid', { hasText: 'name at least one channel' }).waitFor();
  await last.getByRole('checkbox', { name: 'email' }).check();
  await last.getByLabel('Audience').selectOption('managers');
  await pol.getByRole('button', { name: 'Save' }).click();
  await admin.locator('section.policy[data-severity="warning"] li', { hasText: 'After 15 min: email → managers' }).waitFor();
  const warning = (await api('GET', '/api/v1/comm/escalation-policies')).items.find((p) => p.severity === 'warning');
  const step = warning.steps[warning.steps.length - 1];
  if (step.delay_seconds !== 900 || step.channels.join() !== 'email' || step.audience !== 'managers') throw new Error('policy not saved: ' + JSON.stringify(warning));
  await shot(admin, 'en-escalations-policy');
});

await test('fleet: clusters are created, edited and removed', async () => {
  await admin.getByRole('navigation').getByRole('link', { name: 'Fleet' }).click();
  await admin.getByRole('tab', { name: 'Clusters' }).click();
  await admin.getByRole('button', { name: 'Add cluster' }).click();
  let form = admin.getByRole('form', { name: 'Add cluster' });
  await form.getByLabel('Name').fill('bad name!');
  await form.getByRole('button', { name: 'Save' }).click();
  await form.locator('.field.invalid', { hasText: 'letters, digits' }).waitFor();
  await form.getByLabel('Name').fill('e2e-k8s');
  await form.getByLabel('Kind').selectOption('k8s');
  await form.getByLabel('Environment').selectOption('staging');
  await form.getByLabel(/kubeconfig/).fill('apiVersion: v1\nkind: Config\nclusters: []\n');
  await form.getByRole('button', { name: 'Save' }).click();
  const row = admin.locator('tr[data-cluster="e2e-k8s"]');
  await row.locator('td', { hasText: 'staging' }).waitFor();
  await row.locator('td', { hasText: 'stored' }).waitFor(); // the kubeconfig is kept, never shown
  if ((await admin.content()).includes('kind: Config')) throw new Error('the kubeconfig is on the page');
  await row.getByRole('button', { name: 'Edit' }).click();
  form = admin.getByRole('form', { name: 'Edit cluster' });
  await form.getByLabel('Description').fill('the staging cluster');
  await form.getByLabel('Environment').selectOption('prod');
  await form.getByRole('button', { name: 'Save' }).click();
  await row.locator('td', { hasText: 'prod' }).waitFor();
  await row.getByText('the staging cluster').waitFor();
  const c = (await api('GET', '/api/v1/inventory/clusters')).items.find((x) => x.name === 'e2e-k8s');
  if (!c || c.environment !== 'prod' || !c.has_kubeconfig || c.type !== 'k8s') throw new Error('cluster not saved: ' + JSON.stringify(c));
  await shot(admin, 'en-fleet-clusters');
  admin.once('dialog', (d) => d.accept());
  await row.getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached' });
  if ((await api('GET', '/api/v1/inventory/clusters')).items.some((x) => x.name === 'e2e-k8s')) throw new Error('cluster not removed');
});

await test('fleet: a 10 MB command output arrives cut, and is folded', async () => {
  await admin.getByRole('navigation').getByRole('link', { name: 'Fleet' }).click();
  await admin.getByRole('tab', { name: 'Servers' }).click();
  await admin.getByRole('checkbox', { name: 'web-1' }).check();
  // ~10.9 MB on stdout; the executor keeps the first 1 MiB of each stream.
  await admin.getByLabel('Command').fill('seq 1 1500000');
  await admin.getByRole('button', { name: /^Run on selected/ }).click();
  const out = admin.locator('.exec-result .output');
  await out.getByText(/Output is [\d.]+ MB; showing the first and last parts/).waitFor();
  const folded = await out.locator('pre').evaluate((el) => el.textContent.length);
  if (folded > 200) throw new Error(`folded output puts ${folded} characters in the page`);
  await out.getByRole('button', { name: /Show all \(\d+ lines\)/ }).click();
  const open = await out.locator('pre').evaluate((el) => el.textContent.length);
  if (open < 100_000 || open > 300_000) throw new Error(`unfolded output puts ${open} characters in the page`);
  await shot(admin, 'en-fleet-big-output');
  await out.getByRole('button', { name: 'Fold' }).click();
});

await test('chat: 10,000 events stay a window of rows; the end shows the last event', async () => {
  const start = Date.now();
  await startTask(admin, '[many] stream ten thousand events');
  const list = admin.locator('.vlist');
  await list.locator('.msg.agent', { hasText: 'the last event' }).waitFor({ timeout: 180_000 });
  console.log(`     10,000 events streamed and shown in ${Date.now() - start} ms`);
  const window = async () => {
    const rows = await list.locator('[data-vkey]').count();
    if (rows > 300) throw new Error(`${rows} rows in the DOM for 10,000 events`);
    return rows;
  };
  const rows = await window();
  const height = await list.evaluate((el) => el.scrollHeight);
  if (height < 10_000 * 20) throw new Error(`the list is ${height}px high: not all 10,000 events are in it`);
  await list.evaluate((el) => (el.scrollTop = 0));
  await list.locator('.msg.agent', { hasText: /^event 2 of 10000$/ }).waitFor();
  await expectCount(list.locator('.msg.agent', { hasText: 'the last event' }), 0, 'the last event at the top');
  await window();
  await list.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await list.locator('.msg.agent', { hasText: /^event \d+ of 10000$/ }).first().waitFor();
  await window();
  await shot(admin, 'en-chat-10k-middle');
  await admin.getByRole('button', { name: 'Jump to latest' }).click();
  await list.locator('.msg.agent', { hasText: 'the last event' }).waitFor();
  console.log(`     ${rows} rows in the DOM, list ${height}px high`);
  // Opened afresh, the whole session is replayed to a new page the same way.
  const again = await newPage();
  const t0 = Date.now();
  await signIn(again, info.admin, new URL(admin.url()).pathname);
  await again.locator('.vlist .msg.agent', { hasText: 'the last event' }).waitFor({ timeout: 120_000 });
  console.log(`     reopened (10,000 events replayed) in ${Date.now() - t0} ms`);
  const rows2 = await again.locator('.vlist [data-vkey]').count();
  if (rows2 > 300) throw new Error(`${rows2} rows after a reopen`);
  await again.close();
});

await test('chat: a broken WebSocket reconnects and replays what it missed, once', async () => {
  const page = await newPage();
  let cut = false;
  const open = [];
  await page.routeWebSocket(/\/ws\/agent/, (ws) => {
    if (cut) return ws.close({ code: 4000, reason: 'cut by the test' });
    open.push([ws, ws.connectToServer()]);
  });
  await signIn(page, info.admin);
  const sid = await startTask(page, '[l1] the connection will break');
  await page.locator('section.approval.pending').waitFor();
  cut = true;
  for (const [ws, server] of open.splice(0)) {
    await ws.close({ code: 4000, reason: 'cut by the test' });
    await server.close();
  }
  await page.locator('.banner', { hasText: 'Connection lost; reconnecting' }).waitFor();
  // While the page is cut off, the approval is decided elsewhere and the run finishes.
  const [a] = (await api('GET', '/api/v1/agent/approvals?session_id=' + sid)).items;
  await api('POST', `/api/v1/agent/approvals/${a.id}/approve`);
  await until('the run to complete', async () => (await api('GET', '/api/v1/agent/sessions/' + sid)).status === 'completed');
  await shot(page, 'en-chat-reconnecting');
  cut = false;
  await page.locator('.msg.agent', { hasText: 'Done: the step finished.' }).waitFor();
  await page.locator('.banner').waitFor({ state: 'hidden' });
  await page.locator('.output pre', { hasText: info.l1_marker }).waitFor();
  await expectCount(page.locator('.msg.agent', { hasText: 'Done: the step finished.' }), 1, 'final answers');
  await expectCount(page.locator('.msg.agent', { hasText: 'I will write the marker file on web-1.' }), 1, 'first answers');
  await expectCount(page.locator('.tool'), 1, 'tool calls');
  await expectCount(page.locator('.output'), 1, 'outputs');
  await page.close();
});

await test('chat: the server restarts mid-run; the page says so, reconnects, and the run goes on', async () => {
  const sid = await startTask(admin, '[l1] across a restart');
  const card = admin.locator('section.approval.pending');
  await card.waitFor();
  stack.stdin.write('restart\n');
  await admin.locator('.banner', { hasText: 'Connection lost; reconnecting' }).waitFor();
  const line = await nextStackLine(120_000);
  if (!line.restarted) throw new Error('unexpected stack line ' + JSON.stringify(line));
  await admin.locator('.banner').waitFor({ state: 'hidden', timeout: 60_000 });
  await card.getByRole('button', { name: 'Approve' }).click();
  await admin.locator('.output pre', { hasText: info.l1_marker }).waitFor();
  await admin.locator('.msg.agent', { hasText: 'Done: the step finished.' }).waitFor();
  await expectCount(admin.locator('.msg.agent', { hasText: 'Done: the step finished.' }), 1, 'final answers');
  await expectCount(admin.locator('.msg.agent', { hasText: 'I will write the marker file on web-1.' }), 1, 'first answers');
  await expectCount(admin.locator('.tool'), 1, 'tool calls');
  if ((await api('GET', '/api/v1/agent/sessions/' + sid)).status !== 'completed') throw new Error('the run did not complete');
  await shot(admin, 'en-chat-after-restart');
});

await test('voice: talk, see the transcript and the agent state; talking over it flushes its speech', async () => {
  if (!info.voice) {
    if (CI) throw new Error('the server has no speech engines (apt-get install espeak-ng pocketsphinx pocketsphinx-en-us)');
    console.log('     skipped: espeak-ng or pocketsphinx not installed');
    return;
  }
  const page = await newPage();
  await page.addInitScript(() => {
    // Watch playback: which AudioBufferSourceNodes are scheduled and not yet ended or stopped, and, at each
    // "interrupt" control frame, how many were live before the console handled it and after.
    const live = new Set();
    window.__voice = [];
    const start = AudioBufferSourceNode.prototype.start;
    const stop = AudioBufferSourceNode.prototype.stop;
    AudioBufferSourceNode.prototype.start = function (...a) {
      live.add(this);
      this.addEventListener('ended', () => live.delete(this));
      return start.apply(this, a);
    };
    AudioBufferSourceNode.prototype.stop = function (...a) {
      live.delete(this);
      return stop.apply(this, a);
    };
    const WS = window.WebSocket;
    window.WebSocket = class extends WS {
      constructor(...a) {
        super(...a);
        if (!String(a[0]).includes('/ws/voice')) return;
        this.addEventListener('message', (m) => {
          if (typeof m.data === 'string' && m.data.includes('"interrupt"')) {
            const before = live.size; // this listener runs before the console's own handler
            setTimeout(() => window.__voice.push({ before, after: live.size }), 0);
          }
        });
      }
    };
  });
  await signIn(page, info.admin);
  await startTask(page, '[voice] let us talk');
  await page.locator('.msg.agent', { hasText: 'Ready to talk.' }).waitFor();
  await page.getByRole('button', { name: 'Talk to the agent' }).click();
  const voice = page.locator('.voice');
  await voice.locator('.transcript .line.user', { hasText: /yes/i }).first().waitFor({ timeout: 90_000 });
  await voice.getByText('Speaking', { exact: true }).waitFor({ timeout: 60_000 });
  await page.locator('.voice[data-playing="yes"]').waitFor();
  await shot(page, 'en-chat-voice');
  const cut = await page.waitForFunction(() => window.__voice.length > 0 && window.__voice[0], null, { timeout: 90_000 });
  const { before, after } = await cut.jsonValue();
  if (!(before > 0) || after !== 0) throw new Error(`interrupt: ${before} clips live before, ${after} after (want >0, 0)`);
  // What the agent had said before it was cut off is in the transcript, and in the chat as the voice turn.
  await voice.locator('.transcript .line.agent').first().waitFor({ timeout: 60_000 });
  await page.locator('.vlist .msg.user', { hasText: /yes/i }).first().waitFor();
  await page.getByRole('button', { name: 'Stop talking' }).click();
  await page.getByRole('button', { name: 'Talk to the agent' }).waitFor();
  await page.close();
});

await test('every page renders (en)', async () => {
  for (const [name, file] of [['Approvals', 'approvals'], ['Fleet', 'fleet'], ['Monitoring', 'monitoring'], ['Escalations', 'escalations'], ['Settings', 'settings']]) {
    await admin.getByRole('navigation').getByRole('link', { name }).click();
    await admin.getByRole('heading', { level: 1 }).first().waitFor();
    await shot(admin, 'en-' + file);
  }
  await admin.getByRole('navigation').getByRole('link', { name: 'Monitoring' }).click();
  await admin.locator('figure.chart', { hasText: 'disk_usage' }).locator('.uplot').waitFor();
  await shot(admin, 'en-monitoring-charts');
  await admin.getByRole('navigation').getByRole('link', { name: 'Fleet' }).click();
  const row = admin.locator('tr', { hasText: 'web-1' });
  await row.getByRole('button', { name: 'Check connectivity' }).click();
  await admin.locator('.hops .ok').waitFor();
  await shot(admin, 'en-fleet-check');
});

await test('zh: the console in Chinese', async () => {
  await admin.getByRole('button', { name: 'Language' }).click();
  const nav = admin.getByRole('navigation');
  for (const name of ['对话', '审批', '常驻指令', '服务器', '监控', '升级通知', '审计', '设置']) await nav.getByRole('link', { name }).waitFor();
  for (const [name, file] of [['对话', 'chat'], ['审批', 'approvals'], ['常驻指令', 'orders'], ['服务器', 'fleet'], ['监控', 'monitoring'], ['升级通知', 'escalations'], ['审计', 'audit'], ['设置', 'settings']]) {
    await nav.getByRole('link', { name }).click();
    await shot(admin, 'zh-' + file);
  }
  await nav.getByRole('link', { name: '审计' }).click();
  await admin.getByRole('button', { name: '校验哈希链' }).click();
  await admin.locator('.verify.ok', { hasText: '哈希链完整' }).waitFor();
  await nav.getByRole('link', { name: '对话' }).click();
  await admin.getByRole('link', { name: /新任务/ }).waitFor();
});

await test('dark theme', async () => {
  await admin.getByRole('navigation').getByRole('link', { name: '设置' }).click();
  await admin.getByLabel('主题').selectOption('dark');
  await admin.locator('html[data-theme="dark"]').waitFor({ state: 'attached' });
  await admin.getByRole('navigation').getByRole('link', { name: '监控' }).click();
  await admin.locator('figure.chart .uplot').first().waitFor();
  await shot(admin, 'zh-dark-monitoring');
});

await test('expired token: a page that could not refresh is signed out with a clear message', async () => {
  const wait = frozenAt + 65_000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  if (frozenRefreshes < 1) throw new Error('the page never tried to refresh its token');
  await frozen.getByRole('textbox', { name: /Tell the agent/ }).fill('anything');
  await frozen.getByRole('button', { name: 'Send' }).click();
  await frozen.getByText(/Your session ended: .+\. Sign in again\./).waitFor();
  await frozen.getByLabel('Email').waitFor();
  await shot(frozen, 'en-session-expired');
  await frozen.close();
});

await test('the session outlives its one-minute token: refreshed in the background', async () => {
  if (refreshes < 1) throw new Error('no token refresh in ' + results.length + ' tests');
  await admin.getByRole('navigation').getByRole('link', { name: /^(Audit|审计)$/ }).click();
  await admin.getByRole('button', { name: /^(Verify chain|校验哈希链)$/ }).click();
  await admin.locator('.verify.ok').waitFor();
  console.log(`     ${refreshes} refreshes`);
});

await test('no CSP violation or page error', async () => {
  if (cspErrors.length) throw new Error(cspErrors.join('\n'));
});

await browser.close();
stack.stdin.end();
await new Promise((ok) => {
  stack.once('exit', ok);
  setTimeout(() => (stack.kill('SIGTERM'), ok()), 15_000);
});
rmSync(profile, { recursive: true, force: true });
const passed = results.filter((r) => r[1]).length;
const failed = results.length - passed;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

// padWav rewrites espeak-ng's WAV (written to a pipe, so its sizes are placeholders) as a proper PCM WAV
// with `seconds` of silence appended.
function padWav(buf, seconds) {
  let rate = 22050;
  let channels = 1;
  let bits = 16;
  let data = null;
  for (let off = 12; off + 8 <= buf.length; ) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      channels = buf.readUInt16LE(off + 10);
      rate = buf.readUInt32LE(off + 12);
      bits = buf.readUInt16LE(off + 22);
    } else if (id === 'data') {
      data = buf.subarray(off + 8, Math.min(buf.length, off + 8 + size));
      break;
    }
    off += 8 + size + (size & 1);
  }
  if (!data || bits !== 16) throw new Error('espeak-ng did not write 16-bit PCM');
  const pcm = Buffer.concat([data.subarray(0, data.length & ~1), Buffer.alloc(Math.round(rate * seconds) * 2 * channels)]);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(36 + pcm.length, 4);
  h.write('WAVEfmt ', 8, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}
