/**
 * The sample's chat page on the client SDK, in headless Chromium, against the sample as a real process: two pages
 * chat through a room; the server is stopped (the pages show that they are reconnecting, a message typed meanwhile
 * is queued) and started again on the same port; both pages reconnect, join their room again, the queued message
 * arrives, and they chat again. A page without the token learns the refusal (4401 and the guard's message) and does
 * not reconnect. Assertions on the DOM only.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { Page } from 'playwright-core';
import { useChromium } from '../support/browser.js';
import { freePort, WAIT_MS as ONE_WAIT } from '../support/net.js';
import { describeWithPeer } from '../support/peers.js';
import { SAMPLE_BUILD_TIMEOUT_MS, SampleApp } from '../support/sample-process.js';

const TOKEN = 'sample-secret';
const WAIT_MS = 2 * ONE_WAIT;
/** Long enough for the backoff after a restart: the attempts made while the server was down reach bounds of a few seconds. */
const RECONNECT_MS = 40_000;

let sample: SampleApp | undefined;

function say(page: Page, text: string): Promise<void> {
  return page.fill('#text', text).then(() => page.click('#send'));
}

async function sees(page: Page, line: string): Promise<void> {
  await page.locator('#log li').filter({ hasText: line }).first().waitFor({ timeout: WAIT_MS });
}

async function inRoom(page: Page, room: string, timeout = WAIT_MS): Promise<void> {
  await page.locator('#joined').filter({ hasText: new RegExp(`^${room}$`) }).waitFor({ timeout });
}

describeWithPeer('chromium', 'the sample page on the client SDK in headless Chromium', () => {
  const browser = useChromium();
  beforeAll(async () => {
    sample = await SampleApp.build();
  }, SAMPLE_BUILD_TIMEOUT_MS + 10_000);
  afterAll(async () => {
    await sample?.dispose();
  }, 30_000);

  it('two pages chat through a room, reconnect by themselves after the server restarts, and chat again', async () => {
    const port = await freePort();
    let server = await sample!.start(port, { SAMPLE_TOKEN: TOKEN });
    const context = await browser().newContext();
    try {
      const url = `http://127.0.0.1:${port}/?token=${TOKEN}`;
      const first = await context.newPage();
      const second = await context.newPage();
      for (const page of [first, second]) {
        await page.goto(url);
        await page.locator('#status[data-state=open]').waitFor({ timeout: WAIT_MS });
        await page.fill('#room', 'garden');
        await page.click('#join');
        await inRoom(page, 'garden');
      }
      await say(first, 'hello before the restart');
      await sees(second, '[garden] hello before the restart');

      await sample!.stop(server);
      for (const page of [first, second]) {
        await page.locator('#status[data-state=reconnecting]').filter({ hasText: /^reconnecting( in \d+ s)? \(attempt \d+\)$/ }).waitFor({ timeout: WAIT_MS });
        await page.locator('#joined').filter({ hasText: 'garden (offline)' }).waitFor({ timeout: WAIT_MS });
      }
      // Typed while the server is down: queued, and sent once the room is joined again.
      await say(first, 'typed while offline');

      server = await sample!.start(port, { SAMPLE_TOKEN: TOKEN });
      for (const page of [first, second]) {
        await page.locator('#status[data-state=open]').waitFor({ timeout: RECONNECT_MS });
        await inRoom(page, 'garden');
      }
      await sees(first, '[garden] typed while offline');
      await say(second, 'hello after the restart');
      await sees(first, '[garden] hello after the restart');
      await say(first, 'and back');
      await sees(second, '[garden] and back');
      // The message typed offline was sent once.
      expect(await first.locator('#log li', { hasText: 'typed while offline' }).count()).toBe(1);
    } finally {
      await context.close();
      await sample!.stop(server);
    }
  }, 120_000);

  it('shows a refusal by the guard (4401 and its message) and does not reconnect', async () => {
    const port = await freePort();
    const server = await sample!.start(port, { SAMPLE_TOKEN: TOKEN });
    const context = await browser().newContext();
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${port}/?token=wrong`);
      const status = page.locator('#status[data-state=closed]');
      await status.filter({ hasText: 'closed (4401: missing or wrong token)' }).waitFor({ timeout: WAIT_MS });
      // A reconnection would show within the first delay (at most 0.5 s): it stays closed.
      await page.waitForTimeout(1500);
      expect(await page.locator('#status').getAttribute('data-state')).toBe('closed');
    } finally {
      await context.close();
      await sample!.stop(server);
    }
  }, 60_000);
});
