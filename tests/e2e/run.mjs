// Browser tests of Mayak's support desk: playwright-core drives Debian's chromium
// through the chat page, the operator console, the admin page and the widget against a
// running mayak (started by tests/integration/test_e2e_browser.py, which also creates
// the keys). Steps run in order and share state (one conversation goes from the bot to
// an operator and back to the user's rating). Screenshots go to $MAYAK_ARTIFACTS.
//
// Environment: MAYAK_URL, MAYAK_OPERATOR_KEY, MAYAK_ADMIN_KEY, MAYAK_ARTIFACTS,
// MAYAK_CHROMIUM (default /usr/bin/chromium), MAYAK_E2E_SLOW (timeout factor).
// Prints one line per step and "N passed, N failed"; exits 1 on any failure.
import { createHmac } from 'node:crypto';
import { createServer, connect } from 'node:net';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.MAYAK_URL;
const OP_KEY = process.env.MAYAK_OPERATOR_KEY;
const ADMIN_KEY = process.env.MAYAK_ADMIN_KEY;
const ART = process.env.MAYAK_ARTIFACTS || join(process.cwd(), '..', 'artifacts', 'e2e');
const SLOW = Number(process.env.MAYAK_E2E_SLOW || '1');
const T = 15000 * SLOW;
if (!BASE || !OP_KEY || !ADMIN_KEY) {
  console.error('MAYAK_URL, MAYAK_OPERATOR_KEY and MAYAK_ADMIN_KEY are required');
  process.exit(2);
}
mkdirSync(ART, { recursive: true });

// ---- TOTP (RFC 6238: HMAC-SHA1, 30 s, 6 digits), as an authenticator app computes it ----
function base32(s) {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, val = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, '').toUpperCase()) {
    const v = abc.indexOf(ch);
    if (v < 0) throw new Error('bad base32');
    val = (val << 5) | v;
    bits += 5;
    if (bits >= 8) { out.push((val >>> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Buffer.from(out);
}
function totp(secret, step = Math.floor(Date.now() / 1000 / 30)) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', base32(secret)).update(msg).digest();
  const o = h[h.length - 1] & 0x0f;
  const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(n % 1000000).padStart(6, '0');
}

// ---- a tiny step runner ----
const results = [];
const ctx = {};
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`not ok - ${name}: ${e && e.stack ? e.stack : e}`);
    for (const [label, p] of Object.entries(ctx.pages || {})) {
      try { await p.screenshot({ path: join(ART, `failed-${label}.png`), fullPage: true }); } catch { /* closed */ }
      try { console.log(`  # ${label}: ${await pageState(p)}`); } catch { /* closed */ }
    }
  }
}
function check(cond, msg) { if (!cond) throw new Error(msg); }
// What a failed step leaves on a page, so a failure in CI can be read without the
// screenshots: the chat's state and conversation, the notes and the last messages.
async function pageState(page) {
  return page.evaluate(() => {
    const chat = document.querySelector('#chat');
    const texts = (sel) => Array.from(document.querySelectorAll(sel)).slice(-4)
      .map((n) => (n.dataset.role ? n.dataset.role + ': ' : '') + n.textContent.trim().slice(0, 160));
    return JSON.stringify({
      url: location.pathname + location.search,
      state: chat ? chat.dataset.state : undefined,
      conversation: chat ? chat.dataset.conversation : undefined,
      conn: (document.querySelector('#conn') || {}).className,
      notes: texts('.note'),
      messages: texts('.msg'),
    });
  });
}
const shot = (page, name) => page.screenshot({ path: join(ART, `${name}.png`), fullPage: true });

// Logs in to the console or admin page; enrols TOTP on the first login of the key.
async function consoleLogin(page, key) {
  await page.fill('#api-key', key);
  await page.click('#login');
  await page.waitForSelector('#enroll-secret:not(:empty)', { timeout: T });
  const secret = (await page.textContent('#enroll-secret')).trim();
  check(/^[A-Z2-7]{16,}$/.test(secret), `enrolment secret looks wrong: ${secret}`);
  await page.fill('#totp', totp(secret));
  await page.click('#login');
  await page.waitForSelector('#login-form.hidden', { state: 'attached', timeout: T });
  return secret;
}

// The end user's browser reaches mayak through this TCP relay, so a test can cut the
// network under a live WebSocket (and refuse reconnects) the way a dropped Wi-Fi does,
// without any test hook in the page.
function relay(target) {
  const u = new URL(target);
  const live = new Set();
  let down = false;
  const srv = createServer((c) => {
    if (down) { c.destroy(); return; }
    const up = connect(Number(u.port), u.hostname);
    live.add(c); live.add(up);
    c.pipe(up); up.pipe(c);
    const drop = () => { c.destroy(); up.destroy(); live.delete(c); live.delete(up); };
    c.on('error', drop); up.on('error', drop); c.on('close', drop); up.on('close', drop);
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${srv.address().port}`,
    cut() { down = true; for (const s of live) s.destroy(); live.clear(); },
    restore() { down = false; },
    close() { for (const s of live) s.destroy(); srv.close(); },
  })));
}
const net = await relay(BASE);
const USER = net.url;

const userDir = mkdtempSync(join(tmpdir(), 'mayak-e2e-'));
const browser = await chromium.launchPersistentContext(userDir, {
  executablePath: process.env.MAYAK_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1200, height: 820 },
  locale: 'en-US',
});
browser.setDefaultTimeout(T);
ctx.pages = {};

try {
  // 1. A question gets an answer with a citation.
  await step('a user asks a question and gets an answer with a citation', async () => {
    const user = await browser.newPage();
    ctx.pages.user = user;
    await user.goto(`${USER}/?lang=en`);
    await user.waitForSelector('#conn:not(.off)');
    await user.fill('#input', 'How do I connect to the office Wi-Fi network?');
    await user.click('#send');
    const bot = await user.waitForSelector('.msg[data-role=bot] a.citation');
    const href = await bot.getAttribute('href');
    check(href && href.includes('/api/v1/desk/kb/article?source='), `citation link: ${href}`);
    const art = await user.evaluate(async (h) => (await fetch(h)).json(), href);
    check(art.title && art.sections && art.sections.length > 0, 'the cited article opens');
    check((await user.textContent('.msg[data-role=bot]')).includes('Wi-Fi'), 'the answer is about Wi-Fi');
    check((await user.textContent('#state')).length > 0, 'the state is shown');
    await shot(user, '1-answer-with-citation');
  });

  // 2. The user asks for a person; an operator sees it in the queue and claims it.
  await step('a user asks for a person and waits in the queue', async () => {
    // A new visitor: the first page closes (its socket with it) before the storage
    // is cleared, so nothing of the first conversation can come back.
    await ctx.pages.user.close();
    const user = await browser.newPage();
    ctx.pages.user = user;
    await user.goto(`${USER}/?lang=en`);
    await user.evaluate(() => localStorage.clear());
    await user.reload();
    await user.waitForSelector('#conn:not(.off)');
    await user.waitForSelector('#chat[data-state=bot]');
    // A question the knowledge base answers outright, so the bot keeps it until the user
    // asks for a person (a weak match may rightly escalate by itself).
    await user.fill('#input', 'How do I add a network printer?');
    await user.click('#send');
    await user.waitForSelector('.msg[data-role=bot]');
    const afterAnswer = await user.getAttribute('#chat', 'data-state');
    check(afterAnswer === 'bot', `the bot keeps the conversation after its answer: ${await pageState(user)}`);
    await user.click('#human');
    await user.waitForSelector('#chat[data-state=waiting_operator]');
    await user.waitForSelector('#queue-position[data-position="1"]');
    ctx.conv = await user.getAttribute('#chat', 'data-conversation');
    check(ctx.conv && ctx.conv.length === 36, `conversation id ${ctx.conv}`);
    await shot(user, '2-waiting-in-queue');
  });

  await step('the operator logs in (key + TOTP), sees it in the queue with the reason, claims it', async () => {
    const op = await browser.newPage();
    ctx.pages.operator = op;
    await op.goto(`${BASE}/operator?lang=en`);
    await consoleLogin(op, OP_KEY);
    const item = await op.waitForSelector(`.queue-item[data-id="${ctx.conv}"]`);
    check((await item.textContent()).includes('user_request'), 'the queue shows the escalation reason');
    await item.click();
    await op.waitForSelector('#op-messages .msg[data-role=user]');
    await op.waitForSelector('#claim:not([disabled])');
    await shot(op, '3-operator-queue');
    await op.click('#claim');
    await op.waitForSelector('#conv-state[data-state=operator]');
    await op.waitForSelector('#reply-input:not([disabled])');
    await ctx.pages.user.waitForSelector('#chat[data-state=operator]');
  });

  await step('the operator replies and the user sees the reply live', async () => {
    const op = ctx.pages.operator, user = ctx.pages.user;
    await op.fill('#reply-input', 'Hello, this is Anna from support. Which printer model is it?');
    await op.click('#reply-send');
    const m = await user.waitForSelector('.msg[data-role=operator]');
    check((await m.textContent()).includes('Anna from support'), 'the reply reached the user');
    await shot(user, '4-user-sees-operator');
  });

  await step('the bot stays silent while the operator owns the conversation', async () => {
    const op = ctx.pages.operator, user = ctx.pages.user;
    const botsBefore = await user.locator('.msg[data-role=bot]').count();
    await user.fill('#input', 'It is a LaserJet 400, still blank pages');
    await user.click('#send');
    await user.waitForSelector('.msg[data-role=user]:has-text("LaserJet 400"):not(.pending)');
    await op.waitForSelector('#op-messages .msg[data-role=user]:has-text("LaserJet 400")');
    await user.waitForTimeout(1500 * SLOW); // a bot answer would have come by now
    check(await user.locator('.msg[data-role=bot]').count() === botsBefore, 'no bot message while an operator owns it');
    check(await op.locator('#op-messages .msg[data-role=bot]').count() === botsBefore, 'nor in the console');
  });

  await step('messages typed during a network loss arrive once after reconnecting', async () => {
    const op = ctx.pages.operator, user = ctx.pages.user;
    // The network goes: the chat's socket drops and reconnects fail while we type.
    net.cut();
    await user.waitForSelector('#conn.off');
    await user.fill('#input', 'Sent while offline #1');
    await user.click('#send');
    await user.fill('#input', 'Sent while offline #2');
    await user.click('#send');
    check(await user.locator('.msg.pending').count() === 2, 'both wait in the outbox');
    net.restore();
    await user.waitForSelector('#conn:not(.off)', { timeout: T * 2 });
    await user.waitForFunction(() => document.querySelectorAll('.msg.pending').length === 0);
    await op.waitForSelector('#op-messages .msg:has-text("Sent while offline #2")');
    check(await op.locator('#op-messages .msg:has-text("Sent while offline #1")').count() === 1, 'delivered exactly once');
    check(await user.locator('.msg:has-text("Sent while offline #1")').count() === 1, 'shown once to the user');
    // A reload resumes the same conversation with its history.
    await user.reload();
    await user.waitForSelector('#conn:not(.off)');
    await user.waitForSelector('.msg[data-role=operator]');
    check(await user.locator('.msg:has-text("Sent while offline #2")').count() === 1, 'history survives a reload');
  });

  await step('the operator resolves and the user rates it; the rating is recorded', async () => {
    const op = ctx.pages.operator, user = ctx.pages.user;
    await op.click('#resolve');
    await user.waitForSelector('#chat[data-state=resolved]');
    await user.waitForSelector('#rating:not(.hidden)');
    await user.click('.star[data-value="4"]');
    await user.click('#helped-yes');
    await user.click('#rate-submit');
    await user.waitForSelector('#rated:not(.hidden)');
    await shot(user, '5-rated');
    const conv = await user.evaluate(async () => {
      const id = localStorage.getItem('mayak.conv'), tok = localStorage.getItem('mayak.token');
      for (let i = 0; i < 50; i++) {
        const c = await (await fetch(`/api/v1/desk/conversations/${id}`, { headers: { 'X-Desk-Token': tok } })).json();
        if (c.rating) return c;
        await new Promise((r) => setTimeout(r, 100));
      }
      return null;
    });
    check(conv && conv.rating && conv.rating.csat === 4 && conv.rating.helped === true,
          `rating stored: ${JSON.stringify(conv && conv.rating)}`);
    check(conv.state === 'resolved' && conv.human_involved === true, 'resolved by a human');
  });

  await step('the admin page shows agents, knowledge base, keys and live analytics', async () => {
    const admin = await browser.newPage();
    ctx.pages.admin = admin;
    await admin.goto(`${BASE}/admin?lang=en`);
    await consoleLogin(admin, ADMIN_KEY);
    await admin.waitForSelector('#kpi-conversations');
    await admin.waitForFunction(() => Number(document.querySelector('#kpi-conversations b').textContent) >= 2);
    await admin.waitForFunction(() => document.querySelector('#kpi-csat b').textContent.startsWith('4.00'));
    await admin.waitForFunction(() => document.querySelectorAll('#agents tr').length >= 6);
    await admin.waitForFunction(() => Number(document.querySelector('#kb-count').textContent) >= 10);
    await admin.waitForFunction(() => document.querySelectorAll('#keys tr').length >= 3);
    check((await admin.textContent('#analytics-reasons')).includes('user_request'), 'escalation reasons are listed');
    await shot(admin, '6-admin');
  });

  await step('the widget embeds the chat in another page with one script tag', async () => {
    const host = await browser.newPage();
    ctx.pages.host = host;
    await host.setContent(`<!doctype html><html><body><h1>Some company site</h1>
      <script src="${BASE}/widget.js" data-lang="ru"></script></body></html>`);
    const btn = host.locator('#mayak-widget >> button');
    await btn.click();
    const frame = host.frameLocator('#mayak-widget >> iframe');
    await frame.locator('#conn:not(.off)').waitFor();
    check((await frame.locator('#send').textContent()).includes('Отправить'), 'the widget speaks Russian');
    await frame.locator('#input').fill('Как сбросить пароль?');
    await frame.locator('#send').click();
    await frame.locator('.msg[data-role=bot]').waitFor();
    await shot(host, '7-widget');
  });
} finally {
  await browser.close().catch(() => {});
  net.close();
  rmSync(userDir, { recursive: true, force: true });
}

const failed = results.filter(([, ok]) => !ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
