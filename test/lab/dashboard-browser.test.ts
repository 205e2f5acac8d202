// The dashboard in a real browser (Debian's chromium through playwright-core) against a real
// server, agent and clients in the NAT lab: an agent and a client behind easy NATs (their tunnel
// goes direct), a second client behind a router that drops UDP (its tunnel stays on the relay,
// with the reason in plain words). The page must show all of it live, without a reload: the agent
// going offline when it is killed, a client disconnected when its token is revoked from the page.
// Wrong and client tokens are refused at sign-in. Each view is written to test-output/dashboard/.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { INTERNET, type TopologySpec } from '../../lab/spec.js';
import { COORD_HOST, STUN_ADDRESSES, STUN_HOST, COORD_ADDRESS, corporate } from '../../lab/topologies.js';
import { startTraverseStun, TRAVERSE_STUN_PORT } from '../../lab/stun-servers.js';
import { createToken, spawnPing, startAgent, startCoordinator, type LabCoordinator } from '../../lab/peers.js';
import type { Lab, LabProcess } from '../../lab/lab.js';
import { browserUnavailable, launchBrowser, screenshotPath } from '../helpers/browser.js';
import { requiredByCi } from '../helpers/required.js';

function topology(): TopologySpec {
  return {
    routers: [
      { name: 'ragent', nat: 'easy', on: INTERNET, lan: '10.1.0.0/24' },
      { name: 'rclient', nat: 'easy', on: INTERNET, lan: '192.168.1.0/24' },
      { name: 'rkiosk', nat: 'udp-blocked', on: INTERNET, lan: '192.168.2.0/24' },
    ],
    hosts: [
      { name: STUN_HOST, on: INTERNET, addresses: [...STUN_ADDRESSES] },
      { name: COORD_HOST, on: INTERNET, addresses: [COORD_ADDRESS] },
      { name: 'agent', on: 'ragent' },
      { name: 'client', on: 'rclient' },
      { name: 'kiosk', on: 'rkiosk' },
    ],
  };
}

async function skipReason(): Promise<string | false> {
  const lab = await labSkip();
  if (lab !== false) return lab;
  const browser = browserUnavailable();
  if (browser === null) return false;
  if (requiredByCi()) throw new Error(`TRAVERSE_REQUIRE_LAB=1 but ${browser}`);
  return browser;
}

const skip = await skipReason();

describe('dashboard in a browser, in the NAT lab', { skip, timeout: 180_000 }, () => {
  let lab: Lab;
  let coord: LabCoordinator;
  let browser: Browser;
  let page: Page;
  let agent: LabProcess;
  const tokens = { admin: '', agent: '', laptop: '', kiosk: '' };
  const reportDir = mkdtempSync(join(tmpdir(), 'traverse-matrix-'));

  before(async () => {
    lab = await createLab(topology());
    await startTraverseStun(lab, STUN_HOST);
    // A small matrix report for the Matrix view (bench:matrix writes real ones).
    const report = join(reportDir, 'matrix.json');
    const cell = { expect: 'direct', runs: 1, failed: 0, reason: null };
    writeFileSync(
      report,
      JSON.stringify({
        title: 'matrix',
        generatedAt: 'test',
        cells: [
          { ...cell, name: 'easy / easy', agent: 'easy', client: 'easy', direct: 1, timeToDirectMs: 120 },
          { ...cell, name: 'easy / UDP blocked', agent: 'easy', client: 'UDP blocked', expect: 'relay', direct: 0, timeToDirectMs: null, reason: 'UDP is blocked' },
        ],
      }),
    );
    coord = await startCoordinator(lab, ['--stun', `${STUN_ADDRESSES[0]}:${TRAVERSE_STUN_PORT}`, '--matrix-report', report]);
    tokens.admin = await createToken(coord.dataDir, ['--admin', 'ops']);
    tokens.agent = await createToken(coord.dataDir, ['--agent', 'dev-box']);
    tokens.laptop = await createToken(coord.dataDir, ['--client', 'laptop', '--allow', 'dev-box']);
    tokens.kiosk = await createToken(coord.dataDir, ['--client', 'kiosk', '--allow', 'dev-box']);
    agent = await startAgent(lab, 'agent', coord.url, tokens.agent);
    // Long-running pings keep both tunnels up while the page looks at them.
    spawnPing(lab, 'client', coord.url, tokens.laptop, 'dev-box', ['-n', '100000', '--interval', '500']);
    spawnPing(lab, 'kiosk', coord.url, tokens.kiosk, 'dev-box', ['-n', '100000', '--interval', '500']);
    // The browser sits on the lab's internet, beside the server, as an operator's would.
    browser = await launchBrowser(lab.node(COORD_HOST).ns);
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await lab?.teardown();
    rmSync(reportDir, { recursive: true, force: true });
  });

  const signIn = async (token: string): Promise<void> => {
    await page.fill('#token', token);
    await page.click('form button[type=submit]');
  };
  /** Waits until an element matching `selector` shows text matching `re`. */
  const waitText = (selector: string, re: RegExp, timeout = 10_000): Promise<void> =>
    page.locator(selector).filter({ hasText: re }).first().waitFor({ timeout });
  const tab = async (name: string): Promise<void> => {
    await page.click(`[data-tab=${name}]`);
    await page.waitForSelector(`main[data-view=${name}]`);
  };

  test('a wrong token and a client token are refused with a clear message', async () => {
    await page.goto(`${coord.url}/`);
    await signIn('trv1_thisisnotatokenthisisnotatokenthisisnotatok');
    await page.waitForSelector('.error');
    assert.match(await page.textContent('.error') ?? '', /does not sign in: the server does not know this token/);
    await signIn(tokens.laptop);
    await waitText('.error', /client token of "laptop".*admin token/);
    await page.screenshot({ path: screenshotPath('signin-refused') });
    // The token never reaches the URL.
    assert.ok(!page.url().includes('trv1_'));
  });

  test('signed in: the agent is online, the easy/easy tunnel direct, the UDP-blocked one relayed with its reason', async () => {
    await signIn(tokens.admin);
    await page.waitForSelector('[data-identity="agent:dev-box"][data-status=online]', { timeout: 15_000 });
    await page.waitForSelector('[data-identity="client:laptop"][data-status=online]', { timeout: 15_000 });
    await page.screenshot({ path: screenshotPath('nodes') });
    await tab('tunnels');
    await page.waitForSelector('[data-tunnel="laptop>dev-box"][data-path=direct]', { timeout: 20_000 });
    await page.waitForSelector('[data-tunnel="kiosk>dev-box"][data-path=relay]', { timeout: 20_000 });
    await waitText('[data-tunnel="kiosk>dev-box"]', /UDP is blocked on kiosk's network/, 15_000);
    await page.screenshot({ path: screenshotPath('tunnels') });
    await tab('health');
    await waitText('main', /UDP is blocked for client "kiosk"/, 15_000);
    await page.screenshot({ path: screenshotPath('health') });
    await tab('history');
    await page.selectOption('select', 'client:laptop');
    await waitText('[data-history="client:laptop"]', /direct \(/);
    await page.screenshot({ path: screenshotPath('history') });
    await tab('matrix');
    await page.waitForSelector('.matrix img');
    await page.waitForFunction('document.querySelector(".matrix img").complete');
    assert.ok(Number(await page.evaluate('document.querySelector(".matrix img").naturalWidth')) > 200, 'the matrix SVG loaded');
    await page.screenshot({ path: screenshotPath('matrix') });
  });

  test('a token created from the page is shown once; revoking one disconnects its node', async () => {
    await tab('tokens');
    await page.selectOption('form.create select[name=kind]', 'client');
    await page.fill('form.create input[name=name]', 'tablet');
    await page.fill('form.create input[name=allow]', 'dev-box');
    await page.click('form.create button[type=submit]');
    await waitText('[data-created=tablet]', /trv1_[A-Za-z0-9_-]{43}/);
    await waitText('[data-allow=tablet]', /./); // the new client is listed, with its allow list
    assert.equal(await page.inputValue('[data-allow=tablet] input'), 'dev-box');
    await page.screenshot({ path: screenshotPath('tokens') });
    await page.click('[data-created=tablet] button');
    assert.equal(await page.locator('[data-created]').count(), 0, 'gone once dismissed: shown once');
    const hint = await page.getAttribute('[data-identity="client:kiosk"] [data-revoke]', 'data-revoke');
    assert.ok(hint);
    await page.click(`[data-revoke="${hint}"]`);
    await waitText(`[data-token="${hint}"]`, /revoked/);
    await tab('nodes');
    const t0 = Date.now();
    await page.waitForSelector('[data-identity="client:kiosk"][data-status=offline]', { timeout: 10_000 });
    assert.ok(Date.now() - t0 < 10_000);
  });

  test('a killed agent goes offline on the page within seconds, without a reload', async () => {
    await page.evaluate('window.marker = 42');
    const t0 = Date.now();
    agent.kill('SIGKILL');
    await page.waitForSelector('[data-identity="agent:dev-box"][data-status=offline]', { timeout: 8_000 });
    const seconds = (Date.now() - t0) / 1000;
    // Last seen: when it went, not when it came.
    await waitText('[data-identity="agent:dev-box"]', /last seen [0-9] s ago/, 2000);
    // Same document: the marker survives, so nothing reloaded.
    assert.equal(await page.evaluate('window.marker'), 42);
    await page.screenshot({ path: screenshotPath('agent-offline') });
    assert.ok(seconds < 8, `offline after ${seconds} s`);
  });
});

// The seed's corporate case without an internal STUN server: a VPN client and a Kubernetes agent
// behind one corporate NAT that does not hairpin. The tunnel stays on the relay, and Health says
// what to do about it: an internal STUN server.
describe('dashboard in a browser: two peers behind a NAT that does not hairpin', { skip, timeout: 120_000 }, () => {
  test('Health suggests an internal STUN server; the tunnel is relayed with the hairpin reason', async () => {
    const lab = await createLab(corporate(false));
    let browser: Browser | undefined;
    try {
      await startTraverseStun(lab, STUN_HOST);
      const coord = await startCoordinator(lab, ['--stun', `${STUN_ADDRESSES[0]}:${TRAVERSE_STUN_PORT}`]);
      const admin = await createToken(coord.dataDir, ['--admin', 'ops']);
      await startAgent(lab, 'agent', coord.url, await createToken(coord.dataDir, ['--agent', 'dev-box']));
      spawnPing(lab, 'client', coord.url, await createToken(coord.dataDir, ['--client', 'laptop', '--allow', 'dev-box']), 'dev-box', ['-n', '100000', '--interval', '500']);
      browser = await launchBrowser(lab.node(COORD_HOST).ns);
      const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
      await page.goto(`${coord.url}/#health`);
      await page.fill('#token', admin);
      await page.click('form button[type=submit]');
      await page.locator('main').filter({ hasText: /2 nodes behind 203\.0\.113\.\d+, a NAT that does not hairpin/ }).waitFor({ timeout: 20_000 });
      await page.locator('main').filter({ hasText: /run an internal STUN server/ }).waitFor();
      await page.screenshot({ path: screenshotPath('health-no-hairpin') });
      await page.click('[data-tab=tunnels]');
      await page.locator('[data-tunnel="laptop>dev-box"][data-path=relay]').filter({ hasText: /does not hairpin/ }).waitFor({ timeout: 20_000 });
      await page.screenshot({ path: screenshotPath('tunnels-no-hairpin') });
    } finally {
      await browser?.close().catch(() => undefined);
      await lab.teardown();
    }
  });
});
