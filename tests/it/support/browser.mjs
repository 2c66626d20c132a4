// Drives Debian's chromium through playwright-core for the live-page tests
// (tests/it/support/browser.rs). One JSON command per line on stdin, one JSON answer per line on
// stdout: {"open": URL} | {"eval": "JS expression"} | {"screenshot": PATH} | {"problems": true}
// | {"close": true}. Answers are {"ok": VALUE} or {"error": TEXT}. playwright-core comes from
// $SPOTDRILL_PLAYWRIGHT (scripts/install-test-tools); its own browser download is never used.
import { createRequire } from 'node:module';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.SPOTDRILL_PLAYWRIGHT);

const browser = await chromium.launch({
  executablePath: process.env.SPOTDRILL_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--metrics-recording-only'],
});
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
// Console errors, uncaught exceptions, and requests to anywhere but the page's own server.
const problems = [];
let origin = null;
page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('request', (r) => {
  if (origin && !r.url().startsWith(origin)) problems.push(`request elsewhere: ${r.url()}`);
});

const answer = (v) => process.stdout.write(JSON.stringify(v) + '\n');
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const cmd = JSON.parse(line);
  try {
    if (cmd.open) {
      origin = new URL(cmd.open).origin;
      await page.goto(cmd.open);
      answer({ ok: true });
    } else if (cmd.eval) {
      answer({ ok: await page.evaluate(cmd.eval) ?? null });
    } else if (cmd.screenshot) {
      await page.screenshot({ path: cmd.screenshot, fullPage: true });
      answer({ ok: true });
    } else if (cmd.problems) {
      answer({ ok: problems });
    } else if (cmd.close) {
      break;
    }
  } catch (e) {
    answer({ error: String(e) });
  }
}
await browser.close();
