import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { type Browser, type Locator, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_BSNS, PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const HAVE_CHROMIUM = existsSync(CHROMIUM);
// CI installs Chromium (.ci/run), so there a missing browser is a failure, not a reason to skip.
if (!HAVE_CHROMIUM && process.env['CI'] === 'true') throw new Error(`The audit viewer test needs ${CHROMIUM} (apt-get install chromium).`);
if (!HAVE_CHROMIUM) console.warn(`Skipping the audit viewer test: ${CHROMIUM} is missing (apt-get install chromium).`);

/** Fails the 11-check (DESIGN §3 test vector): the gateway must refuse it with BAD_USER_INPUT. */
const INVALID_BSN = '999998620';
const INJECTED_SUB = '<img src=x onerror="window.__injected=true">';

const VT_HIT_CHECK = `query VtHitCheck($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { complete partners { partner status contact { organisation } } } }`;
const POLICE_BAN_CHECK = `query PoliceBanCheck($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete underActiveBan bans { id } } }`;
// Police may see hit statuses but not the contact route: the gateway refuses the whole operation.
const POLICE_HIT_WITH_CONTACT = `query PoliceHitWithContact($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { partners { partner contact { phone } } } }`;

interface SeenRequest {
  url: string;
  method: string;
  body: string | null;
}

describe.skipIf(!HAVE_CHROMIUM)('the audit viewer in a real browser', () => {
  let federation: Federation;
  let browser: Browser;
  let page: Page;
  let politieOfficer: string;
  let vtOfficer: string;
  const seen: SeenRequest[] = [];
  const navigations: string[] = [];
  const pageErrors: string[] = [];
  let historyAtStart = 0;

  beforeAll(async () => {
    // A generous deadline: the timelines below should hold every partner, even on a busy machine.
    federation = await startFederation({ deadlineMs: 10_000 });
    const { issuer } = federation;
    const vtWorker = await issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', sub: 'vt-worker-7', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-2026-000123' });
    const police = await issuer.token({ sub: 'agent-4711', case_ref: 'PL-2026-4711' });

    const hit = await federation.query(vtWorker, VT_HIT_CHECK, { bsn: PERSONS.subject });
    expect(hit.body.data!.hitCheck.complete).toBe(true);
    const bans = await federation.query(police, POLICE_BAN_CHECK, { bsn: PERSONS.subject });
    expect(bans.body.data!.activeBans).toMatchObject({ complete: true, underActiveBan: true });
    const denied = await federation.query(police, POLICE_HIT_WITH_CONTACT, { bsn: PERSONS.subject });
    expect(denied.body.errors![0]!.extensions!.code).toBe('PURPOSE_FORBIDS_FIELD');

    // Twelve checks on the person known only to Veilig Thuis, for paging; the first carries markup in its subject claim.
    for (let i = 0; i < 12; i++) {
      const token = await issuer.token({
        org: 'veilig-thuis-rotterdam-rijnmond', sub: i === 0 ? INJECTED_SUB : `vt-worker-${i}`, roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: `VT-2026-${1000 + i}`,
      });
      expect((await federation.query(token, VT_HIT_CHECK, { bsn: PERSONS.vtOnly })).body.data!.hitCheck.complete).toBe(true);
    }

    politieOfficer = await issuer.token({ org: 'politie', sub: 'fg-politie', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined });
    vtOfficer = await issuer.token({ org: 'veilig-thuis-rotterdam-rijnmond', sub: 'fg-vt', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    // An officer's clock is local time: one off UTC by a non-whole hour, and without daylight
    // saving, so that a window never spans a change of offset whatever day the test runs.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'Asia/Kolkata' });
    page = await context.newPage();
    page.on('request', (request) => seen.push({ url: request.url(), method: request.method(), body: request.postData() }));
    page.on('framenavigated', (frame) => navigations.push(frame.url()));
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // Refused searches (401, 403, 400) are expected; anything else, a CSP violation included, is not.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(message.text());
    });
    page.setDefaultTimeout(10_000);
    await page.goto(`${federation.gatewayUrl}/audit`);
    historyAtStart = await page.evaluate(() => history.length);
  });

  afterAll(async () => {
    await browser?.close();
    await federation?.stop();
  });

  /** Fills the form by its labels and submits it with the keyboard, then waits for the answer to be shown. */
  async function search(fields: { token: string; query?: string; purpose?: string; caller?: string; from?: string; to?: string; perPage?: string }): Promise<void> {
    await page.getByLabel('Access token').fill(fields.token);
    await page.getByLabel('Trace id or BSN').fill(fields.query ?? '');
    await page.getByLabel('Purpose (optional)').fill(fields.purpose ?? '');
    await page.getByLabel('Caller account (optional)').fill(fields.caller ?? '');
    await page.getByLabel('From (optional)').fill(fields.from ?? '');
    await page.getByLabel('Until (optional)').fill(fields.to ?? '');
    await page.getByLabel('Per page').selectOption(fields.perPage ?? '25');
    const answered = page.waitForResponse((response) => response.url().endsWith('/graphql'));
    await page.getByLabel('Trace id or BSN').press('Enter');
    await answered;
    await page.waitForFunction(() => !(document.getElementById('search-button') as HTMLButtonElement).disabled);
  }

  const message = () => page.locator('#message');
  /** A moment as a datetime-local field takes it: the browser's own local time, to the second. */
  // Chromium keeps a whole minute as HH:MM, and Playwright refuses a fill the field then reads back
  // otherwise: whole seconds only when they are not zero.
  const localTime = (ms: number) =>
    page.evaluate((at) => new Date(at - new Date(at).getTimezoneOffset() * 60_000).toISOString().slice(0, 19).replace(/:00$/, ''), ms);
  const graphqlRequests = () => seen.filter((request) => request.url.endsWith('/graphql')).length;
  const articles = () => page.locator('#request-list article');
  const articleOf = (operation: string) => page.locator('#request-list article', { has: page.locator('h3', { hasText: operation }) });
  const factOf = (article: Locator, label: string) => article.locator('.facts div', { has: page.locator('dt', { hasText: label }) }).locator('dd');
  const partnerStatus = (article: Locator, partner: string) => article.locator(`li.partner[data-partner="${partner}"] .partner-status`);

  /** Visible text below the WCAG AA ratio of 4.5:1 against its effective background. */
  function contrastFailures(): Promise<string[]> {
    return page.evaluate(() => {
      const rgb = (value: string) => (value.match(/[\d.]+/g) ?? []).map(Number);
      const luminance = ([r, g, b]: number[]) =>
        [r!, g!, b!].map((c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)).reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i]!, 0);
      const background = (element: Element | null): number[] => {
        for (; element; element = element.parentElement) {
          const color = rgb(getComputedStyle(element).backgroundColor);
          if (color.length === 3 || color[3]! > 0) return color.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const found: string[] = [];
      for (const element of document.querySelectorAll('body *')) {
        const own = [...element.childNodes].some((node) => node.nodeType === Node.TEXT_NODE && node.textContent!.trim());
        if (!own || (element as HTMLElement).offsetParent === null) continue;
        const fg = luminance(rgb(getComputedStyle(element).color));
        const bg = luminance(background(element));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        if (ratio < 4.5) found.push(`${element.tagName}.${element.className}: ${ratio.toFixed(2)}`);
      }
      return found;
    });
  }

  it('is a labelled, landmarked page whose controls are reached in order by keyboard', async () => {
    await expect(page.title()).resolves.toBe('Access log · Samen onder Handbereik');
    expect(await page.locator('header').count()).toBe(1);
    expect(await page.locator('main').count()).toBe(1);
    expect(await page.locator('h1').innerText()).toBe('Access log');
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select')].filter((input) => (input as HTMLInputElement).labels?.length === 0).map((input) => input.id),
    );
    expect(unlabelled).toEqual([]);
    const token = page.getByLabel('Access token');
    expect(await token.getAttribute('type')).toBe('password');
    expect(await token.getAttribute('autocomplete')).toBe('off');

    await token.focus();
    const order: string[] = [];
    // A date-time field takes one Tab per part (day, month, year, …): each field is named once.
    for (let i = 0; i < 40 && order.at(-1) !== 'clear-button'; i++) {
      await page.keyboard.press('Tab');
      const id = await page.evaluate(() => document.activeElement?.id ?? '');
      if (id !== order.at(-1)) order.push(id);
    }
    expect(order).toEqual(['query', 'purpose', 'caller', 'from', 'to', 'page-size', 'search-button', 'clear-button']);
  });

  it('shows a refused token in plain words with UNAUTHENTICATED, and sends nothing for malformed input', async () => {
    await search({ token: 'not-a-token', query: PERSONS.subject });
    await expect(message().innerText()).resolves.toContain('The token was not accepted.');
    await expect(message().innerText()).resolves.toContain('UNAUTHENTICATED');
    expect(await message().getAttribute('role')).toBe('alert');
    expect(await page.locator('#results').isHidden()).toBe(true);

    const before = seen.filter((request) => request.url.endsWith('/graphql')).length;
    await page.getByLabel('Trace id or BSN').fill('12345');
    await page.getByLabel('Trace id or BSN').press('Enter');
    await expect(page.locator('#query-error').innerText()).resolves.toBe('Enter a trace id (32 characters, 0–9 and a–f) or a BSN (9 digits).');
    expect(await page.getByLabel('Trace id or BSN').getAttribute('aria-invalid')).toBe('true');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('query');
    expect(seen.filter((request) => request.url.endsWith('/graphql')).length).toBe(before);
  });

  it('explains a token whose role may not read the access log (FORBIDDEN)', async () => {
    await search({ token: await federation.issuer.token({ purpose: 'privacy-audit', case_ref: undefined }), query: PERSONS.subject });
    await expect(message().innerText()).resolves.toContain('This token may not read the access log.');
    await expect(message().innerText()).resolves.toContain('FORBIDDEN');
  });

  it('explains a BSN that fails the 11-check as the gateway’s BAD_USER_INPUT', async () => {
    await search({ token: politieOfficer, query: INVALID_BSN });
    await expect(message().innerText()).resolves.toContain('This BSN is not valid.');
    await expect(message().innerText()).resolves.toContain('BAD_USER_INPUT');
  });

  it('shows every request about a person as a timeline, newest first', async () => {
    await search({ token: politieOfficer, query: PERSONS.subject });
    await expect(message().innerText()).resolves.toBe('');
    const operations = await articles().locator('h3').allInnerTexts();
    const ban = operations.findIndex((heading) => heading.endsWith('PoliceBanCheck'));
    const hit = operations.findIndex((heading) => heading.endsWith('VtHitCheck'));
    const refused = operations.findIndex((heading) => heading.endsWith('PoliceHitWithContact'));
    // Newest first; refused, the police's attempt is still in the person's history.
    expect(refused).toBeGreaterThanOrEqual(0);
    expect(ban).toBeGreaterThan(refused);
    expect(hit).toBeGreaterThan(ban);

    const vt = articleOf('VtHitCheck');
    await expect(factOf(vt, 'Requester').innerText()).resolves.toMatch(/veilig-thuis-rotterdam-rijnmond[\s\S]*Account: vt-worker-7[\s\S]*vt-medewerker/);
    await expect(factOf(vt, 'Purpose').innerText()).resolves.toBe('vt-hit-check\nurn:soh:activity:vt-hit-check:1');
    await expect(factOf(vt, 'Legal basis').innerText()).resolves.toBe('Wmo 2015 art. 4.1.1 / 5.2.6');
    await expect(factOf(vt, 'Case reference').innerText()).resolves.toBe('VT-2026-000123');
    await expect(factOf(vt, 'Operation').innerText()).resolves.toBe('VtHitCheck');
    await expect(factOf(vt, 'Decision').innerText()).resolves.toBe('ALLOW\nRule: purposes/vt-hit-check.yaml: allow');
    await expect(factOf(vt, 'Policy revision').innerText()).resolves.toMatch(/^[0-9a-f]{64}$/);
    await expect(factOf(vt, 'Outcome').innerText()).resolves.toBe('ALLOWED');
    for (const partner of ['POLITIE', 'VEILIG_THUIS', 'OM', 'RECLASSERING']) {
      await expect(partnerStatus(vt, partner).innerText()).resolves.toBe('Hit');
    }
    const vtComponents = await vt.locator('li.component').evaluateAll((items) => items.map((item) => item.getAttribute('data-component')));
    expect(vtComponents[0]).toBe('gateway');
    expect(vtComponents.slice(1).sort()).toEqual(['om', 'politie', 'reclassering', 'veilig-thuis']);
    const vtHeadings = await vt.locator('li.component h5').allTextContents();
    expect(vtHeadings[0]).toBe('Gateway');
    expect(vtHeadings).toContain('Veilig Thuis node veilig-thuis');
    await expect(vt.locator('[data-component="gateway"] tbody th').allInnerTexts()).resolves.toEqual(['hitCheck']);
    await expect(vt.locator('[data-component="om"] tbody th').allInnerTexts()).resolves.toEqual(['node.records']);
    await expect(vt.locator('[data-component="om"] tbody td').nth(4).innerText()).resolves.toBe('HIT');
    for (const offset of await vt.locator('tbody td.num').allInnerTexts()) expect(offset).toMatch(/^(\+\d+ ms|\+?\d+(\.\d+)? s|\d+ ms)$/);
    await expect(vt.locator('tbody tr[data-chain="valid"]').count()).resolves.toBe(5);
    await expect(vt.locator('tbody tr td .chain').allTextContents()).resolves.toEqual(Array(5).fill('✓valid'));
    await expect(vt.locator('.badges').innerText()).resolves.toMatch(/Outcome: Allowed[\s\S]*Chain valid: 5 records/);

    const police = articleOf('PoliceBanCheck');
    await expect(factOf(police, 'Requester').innerText()).resolves.toMatch(/^politie\nAccount: agent-4711\npolitie-medewerker$/);
    await expect(factOf(police, 'Purpose').innerText()).resolves.toContain('police-ban-enforcement');
    await expect(factOf(police, 'Legal basis').innerText()).resolves.toBe('art. 38v Sr / art. 509hh Sv / art. 80 Sv / Wet tijdelijk huisverbod art. 2');
    await expect(factOf(police, 'Case reference').innerText()).resolves.toBe('PL-2026-4711');
    await expect(police.locator('li.partner').evaluateAll((items) => items.map((item) => item.getAttribute('data-partner')))).resolves.toEqual(['POLITIE', 'OM', 'RECLASSERING']);
    const policeComponents = await police.locator('li.component').evaluateAll((items) => items.map((item) => item.getAttribute('data-component')));
    expect(policeComponents[0]).toBe('gateway');
    expect(policeComponents.slice(1).sort()).toEqual(['om', 'politie', 'reclassering']);

    const headingLevels = await page.evaluate(() => [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map((heading) => Number(heading.tagName[1])));
    expect(headingLevels[0]).toBe(1);
    headingLevels.forEach((level, i) => i > 0 && expect(level - headingLevels[i - 1]!).toBeLessThanOrEqual(1));
    await expect(page.locator('#status').innerText()).resolves.toMatch(/^\d+ requests for the BSN you entered, newest first\.$/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'audit-viewer.png'), fullPage: true });
  });

  it('finds exactly one request by its trace id, however it is typed', async () => {
    const traceId = await articleOf('PoliceBanCheck').locator('.trace-id').innerText();
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    await search({ token: politieOfficer, query: ` ${traceId.toUpperCase()} ` });
    expect(await articles().count()).toBe(1);
    expect(await articles().first().getAttribute('data-trace-id')).toBe(traceId);
    await expect(articles().first().locator('h3').innerText()).resolves.toMatch(/PoliceBanCheck$/);
    await expect(page.locator('#more-button').isHidden()).resolves.toBe(true);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('results-heading');
  });

  it('lists a refused request under its purpose, with its decision and the person it named, of whom nothing was looked up', async () => {
    await search({ token: politieOfficer, purpose: 'police-ban-enforcement' });
    const denied = articleOf('PoliceHitWithContact');
    expect(await denied.count()).toBe(1);
    await expect(factOf(denied, 'Decision').innerText()).resolves.toMatch(
      /^DENY:PURPOSE_FORBIDS_FIELD\nRefused because the request asked for a field outside its purpose\.\nRule: purposes\/police-ban-enforcement\.yaml: /,
    );
    await expect(factOf(denied, 'Outcome').innerText()).resolves.toBe('DENIED');
    await expect(denied.locator('.badges').innerText()).resolves.toMatch(/Outcome: Denied[\s\S]*Chain valid: 1 record/);
    await expect(denied.innerText()).resolves.toContain('No partner was asked.');
    await expect(denied.locator('li.component').evaluateAll((items) => items.map((item) => item.getAttribute('data-component')))).resolves.toEqual(['gateway']);
    await expect(denied.locator('[data-component="gateway"] tbody th').allInnerTexts()).resolves.toEqual(['hitCheck']);
    await expect(denied.locator('[data-component="gateway"] tbody td').nth(4).innerText()).resolves.toBe('refused (DENY:PURPOSE_FORBIDS_FIELD), nothing looked up');
    await expect(articles().locator('h3').allInnerTexts()).resolves.toEqual([expect.stringMatching(/PoliceHitWithContact$/), expect.stringMatching(/PoliceBanCheck$/)]);
  });

  it('pages with "load more", newest first, keeps markup from a record as text, and never shows the BSN', async () => {
    await search({ token: vtOfficer, query: PERSONS.vtOnly, perPage: '10' });
    expect(await articles().count()).toBe(10);
    const more = page.locator('#more-button');
    await expect(page.getByRole('button', { name: 'Load more requests' }).isVisible()).resolves.toBe(true);
    await more.focus();
    const answered = page.waitForResponse((response) => response.url().endsWith('/graphql'));
    await page.keyboard.press('Enter');
    await answered;
    await page.waitForFunction(() => document.querySelectorAll('#request-list article').length === 12);
    await expect(more.isHidden()).resolves.toBe(true);
    expect(await page.evaluate(() => document.activeElement?.closest('article') === document.querySelectorAll('#request-list article')[10])).toBe(true);

    const traceIds = await articles().evaluateAll((items) => items.map((item) => item.getAttribute('data-trace-id')));
    expect(new Set(traceIds).size).toBe(12);
    const times = await articles().locator('h3 time').evaluateAll((items) => items.map((item) => Date.parse(item.getAttribute('datetime')!)));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    await expect(page.locator('#status').innerText()).resolves.toBe('12 requests for the BSN you entered, newest first.');

    // The oldest request's subject claim held markup: shown as text, never parsed.
    const oldest = articles().last();
    await expect(factOf(oldest, 'Requester').innerText()).resolves.toContain(`Account: ${INJECTED_SUB}`);
    expect(await page.locator('#request-list img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
    await expect(partnerStatus(oldest, 'VEILIG_THUIS').innerText()).resolves.toBe('Hit');
    await expect(partnerStatus(oldest, 'POLITIE').innerText()).resolves.toBe('No hit');

    expect(await page.locator('body').innerText()).not.toContain(PERSONS.vtOnly);
  });

  it('keeps its place when an expired token is replaced before "load more"', async () => {
    await search({ token: vtOfficer, query: PERSONS.vtOnly, perPage: '10' });
    expect(await articles().count()).toBe(10);
    // The token ran out while the officer read: the next page is refused, the first stays.
    await page.getByLabel('Access token').fill('not-a-token');
    let answered = page.waitForResponse((response) => response.url().endsWith('/graphql'));
    await page.locator('#more-button').click();
    await answered;
    await page.waitForFunction(() => (document.getElementById('message') as HTMLElement).innerText.includes('UNAUTHENTICATED'));
    await expect(message().innerText()).resolves.toContain('Paste a fresh privacy-officer token and choose “Load more requests” again.');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('message');
    expect(await articles().count()).toBe(10);

    await page.getByLabel('Access token').fill(vtOfficer);
    answered = page.waitForResponse((response) => response.url().endsWith('/graphql'));
    await page.locator('#more-button').click();
    await answered;
    // The officer's own searches about the person are requests about them too: more than 12 by now.
    await page.waitForFunction(() => document.querySelectorAll('#request-list article').length > 10);
    await expect(message().innerText()).resolves.toBe('');
    const traceIds = await articles().evaluateAll((items) => items.map((item) => item.getAttribute('data-trace-id')));
    expect(new Set(traceIds).size).toBe(traceIds.length);
  });

  it("finds one caller's requests within a time window, and asks for the window before sending anything", async () => {
    const before = graphqlRequests();
    await page.getByLabel('Access token').fill(politieOfficer);
    await page.getByLabel('Trace id or BSN').fill('');
    await page.getByLabel('Purpose (optional)').fill('');
    await page.getByLabel('Caller account (optional)').fill('agent-4711');
    await page.getByLabel('From (optional)').fill('');
    await page.getByLabel('Until (optional)').fill('');
    await page.getByLabel('Caller account (optional)').press('Enter');
    await expect(page.locator('#caller-error').innerText()).resolves.toBe('A search by caller account needs both From and Until.');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('caller');

    // A whole minute, as officers mostly type them (the field then shows no seconds).
    const now = Math.floor(Date.now() / 60_000) * 60_000;
    await page.getByLabel('From (optional)').fill(await localTime(now + 60_000));
    await page.getByLabel('Until (optional)').fill(await localTime(now - 60_000));
    await page.getByLabel('Caller account (optional)').press('Enter');
    await expect(page.locator('#to-error').innerText()).resolves.toBe('Until must be later than From.');
    expect(graphqlRequests()).toBe(before);

    await search({ token: politieOfficer, caller: 'agent-4711', from: await localTime(now - 3_600_000), to: await localTime(now + 60_000) });
    const operations = await articles().locator('h3').allInnerTexts();
    expect(operations).toEqual([expect.stringMatching(/PoliceHitWithContact$/), expect.stringMatching(/PoliceBanCheck$/)]);
    const sent = seen.filter((request) => request.url.endsWith('/graphql')).at(-1)!;
    const filter = JSON.parse(sent.body!).variables.filter;
    expect(filter).toEqual({ requesterSub: 'agent-4711', from: expect.stringMatching(/Z$/), to: expect.stringMatching(/Z$/) });
    expect(Date.parse(filter.to) - Date.parse(filter.from)).toBe(3_660_000);

    await search({ token: politieOfficer, caller: 'agent-4711', from: await localTime(now - 7_200_000), to: await localTime(now - 3_600_000) });
    await expect(page.locator('#results-summary').innerText()).resolves.toMatch(/^No requests found for the account “agent-4711” from .* until .*\./);
  });

  it('marks a tampered record BROKEN in words, next to the records that still verify', async () => {
    await search({ token: politieOfficer, query: PERSONS.subject });
    const traceId = await articleOf('PoliceBanCheck').locator('.trace-id').innerText();
    // Someone edits the gateway's record of the ban check to hide OM's hit.
    const db = new Database(join(federation.dataDir, 'gateway', 'audit.db'));
    try {
      const changed = db
        .prepare(`UPDATE records SET body = json_set(body, '$.attributes."soh.partners".OM', 'NO_HIT') WHERE trace_id = ? AND kind = 'processing'`)
        .run(traceId).changes;
      expect(changed).toBe(1);
    } finally {
      db.close();
    }

    await search({ token: politieOfficer, query: traceId });
    const article = articles().first();
    await expect(article.locator('.badges').innerText()).resolves.toContain('Chain BROKEN: 1 of 4 records');
    await expect(article.locator('.chain-alert').innerText()).resolves.toMatch(/^CHAIN BROKEN\. One record of this request fails the hash-chain check/);
    const gatewayRow = article.locator('[data-component="gateway"] tbody tr');
    expect(await gatewayRow.getAttribute('data-chain')).toBe('broken');
    await expect(gatewayRow.locator('.chain').textContent()).resolves.toBe('✗BROKEN');
    await expect(gatewayRow.locator('td').nth(4).innerText()).resolves.toContain('Openbaar Ministerie NO_HIT');
    await expect(article.locator('li.is-node tbody tr .chain').allTextContents()).resolves.toEqual(['✓valid', '✓valid', '✓valid']);

    await search({ token: politieOfficer, query: PERSONS.subject });
    await page.screenshot({ path: join(ARTIFACTS, 'audit-viewer-broken.png'), fullPage: true });
  });

  it('meets WCAG AA contrast for its text', async () => {
    expect(await page.locator('#request-list .chain.broken').count()).toBeGreaterThan(0);
    await expect(contrastFailures()).resolves.toEqual([]);
  });

  // Sent after the officer's searches: the gateway keeps a purpose refusal as the document's cached
  // validation result, so a refusal that was the first validation of the viewer's document would
  // refuse every later search with it (gateway/purpose/plugin.ts, onValidate's setResult).
  it('explains a worker token whose purpose does not cover the access log (PURPOSE_FORBIDS_FIELD)', async () => {
    await search({ token: await federation.issuer.token(), query: PERSONS.subject });
    await expect(message().innerText()).resolves.toContain('This token’s purpose does not cover the access log.');
    await expect(message().innerText()).resolves.toContain('The token was issued for “police-ban-enforcement”.');
    await expect(message().innerText()).resolves.toContain('PURPOSE_FORBIDS_FIELD');
    // The previous search's results do not stay on screen as if they answered this one.
    expect(await page.locator('#results').isHidden()).toBe(true);
    await expect(contrastFailures()).resolves.toEqual([]);
  });

  it('forgets the token and results on request, and never put the token or a BSN anywhere but a POST body', async () => {
    await page.getByRole('button', { name: 'Forget token and results' }).press('Enter');
    expect(await page.getByLabel('Access token').inputValue()).toBe('');
    expect(await page.locator('#results').isHidden()).toBe(true);

    const graphql = seen.filter((request) => request.url.endsWith('/graphql'));
    expect(graphql.length).toBeGreaterThan(0);
    expect(graphql.every((request) => request.method === 'POST')).toBe(true);
    // The listener did see the BSN, in the body of a search.
    expect(graphql.some((request) => request.body?.includes(`"subjectBsn":"${PERSONS.subject}"`))).toBe(true);
    const addresses = [page.url(), ...navigations, ...seen.map((request) => request.url)];
    for (const bsn of [...ALL_BSNS, INVALID_BSN]) {
      for (const address of addresses) expect(address).not.toContain(bsn);
    }
    const [, claims, signature] = politieOfficer.split('.') as [string, string, string];
    for (const address of addresses) {
      expect(address).not.toContain(claims);
      expect(address).not.toContain(signature);
    }
    expect(page.url()).toBe(`${federation.gatewayUrl}/audit`);
    const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookies: document.cookie, history: history.length }));
    expect(stored).toEqual({ local: 0, session: 0, cookies: '', history: historyAtStart });
    expect(pageErrors).toEqual([]);
  });
});
