// Browser tests of the console: playwright-core drives Debian's chromium against a real `it0 serve` with a
// real sshd and a local model speaking the Anthropic wire format (started by ./stack). Screenshots of each
// page go to e2e/artifacts/ (not committed). Prints "N passed, N failed"; exits non-zero on any failure.
// Without chromium the run is skipped locally and fails under CI=true.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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
const info = await new Promise((ok, fail) => {
  const rl = createInterface({ input: stack.stdout });
  rl.once('line', (l) => ok(JSON.parse(l)));
  stack.once('exit', (c) => fail(new Error('stack exited with ' + c)));
  setTimeout(() => fail(new Error('stack did not start in 120 s')), 120_000);
});

const profile = mkdtempSync(join(tmpdir(), 'it0-chromium-'));
// A fresh profile directory each run (playwright passes it as --user-data-dir). The console keeps its token in
// page memory, so two pages of this one context are two independent sessions (admin and viewer).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 900 },
  locale: 'en-US',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

const cspErrors = [];
async function newPage(width = 1280) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height: 900 });
  page.setDefaultTimeout(20_000);
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

await test('sign in', async () => {
  await admin.goto(info.url + '/');
  await shot(admin, 'en-login');
  await signIn(admin, info.admin);
  const headers = (await admin.request.get(info.url + '/')).headers();
  if (!headers['content-security-policy']?.includes("script-src 'self'") || headers['x-frame-options'] !== 'DENY') throw new Error('security headers missing');
  const stored = await admin.evaluate(() => JSON.stringify(localStorage) + document.cookie);
  if (stored.includes('eyJ')) throw new Error('the token leaked into localStorage or a cookie');
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
