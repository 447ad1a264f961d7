import { type Server, type ServerResponse, createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JWTVerifyGetKey, exportJWK, jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { issuerKeys } from '../gateway/auth/caller-token.ts';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import type { GraphQLError } from 'graphql';
import { systemClock } from '../lib/clock.ts';
import { KeySetUnavailable, remoteKeySet } from '../lib/key-set-fetch.ts';
import { gatewayKeys, gatewayTokenVerifier } from '../nodes/runtime/gateway-token.ts';
import { PERSONS } from './support/fixtures.ts';
import { type Federation, type NodeProcess, TestIssuer, startFederation, startNodeProcess, stopNode } from './support/federation.ts';
import { accessRecordsOf, callNode, nodeTokenMinter } from './support/node-calls.ts';

/** Ports that fetch() refuses to contact (WHATWG "bad port"); the test serves key sets on the first one free here. */
const BAD_PORTS = [6666, 6667, 6668, 6669, 6679, 6697, 10080, 6566, 6000];

/** A loopback server on a bad port that answers every GET with `body` as JSON. */
async function serveOnBadPort(body: () => object): Promise<{ server: Server; url: string }> {
  for (const port of BAD_PORTS) {
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body()));
    });
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (listening) return { server, url: `http://127.0.0.1:${port}/jwks.json` };
  }
  throw new Error(`none of the ports ${BAD_PORTS.join(', ')} is free`);
}

describe('key sets served on a port that fetch() refuses', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'soh-bad-port-'));
  let keySet: { server: Server; url: string };
  let node: NodeProcess;

  beforeAll(async () => {
    keySet = await serveOnBadPort(() => new GatewayKeys(dataDir).jwks());
    await expect(fetch(keySet.url)).rejects.toThrow();
    node = await startNodeProcess('om', { SOH_DATA_DIR: dataDir, SOH_GATEWAY_JWKS_URL: keySet.url });
  }, 60_000);

  afterAll(async () => {
    if (node) await stopNode(node);
    keySet?.server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('are fetched by a node: it accepts the gateway token they verify', async () => {
    const token = await nodeTokenMinter(dataDir)('om', { purpose: 'vt-hit-check', org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'] });
    const query = `query Records($bsns: [String!]!, $refs: [String!]!, $at: DateTime!) { records(bsns: $bsns, subjectRefs: $refs, at: $at) { contact { organisation } } }`;
    const { status, body } = await callNode(node.url, token, query, { bsns: [PERSONS.unknown], refs: ['A'.repeat(22)], at: new Date().toISOString() });
    expect(body.errors).toBeUndefined();
    expect(status).toBe(200);
    expect(body.data).toEqual({ records: [null] });
  });

  it("leave a node unable to judge the gateway's token while they cannot be fetched: 503 ISSUER_UNAVAILABLE, not 401", async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const verify = gatewayTokenVerifier({ nodeId: 'om', keys: gatewayKeys({ jwksUrl: 'http://127.0.0.1:1/jwks.json' }), clock: systemClock });
    const token = await nodeTokenMinter(dataDir)('om', { purpose: 'vt-hit-check', org: 'veilig-thuis-rotterdam-rijnmond', roles: ['vt-medewerker'] });
    const refusal = await verify(`Bearer ${token}`).then(() => null, (error: GraphQLError) => error);
    expect(refusal?.extensions).toMatchObject({ code: 'ISSUER_UNAVAILABLE', http: { status: 503, headers: { 'Retry-After': '5' } } });
    vi.restoreAllMocks();
  });

  it("are fetched by the gateway: a caller token verifies against its issuer's key set", async () => {
    const issuer = new TestIssuer('https://idp.bad-port.test.example', ['*'], join(dataDir, 'issuer.json'));
    await issuer.writeJwks();
    const issuerSet = await serveOnBadPort(() => JSON.parse(readFileSync(issuer.jwksFile, 'utf8')));
    try {
      const keys = issuerKeys({ issuer: issuer.issuer, jwksUrl: issuerSet.url }, 5_000);
      const { payload } = await jwtVerify(await issuer.token(), keys, { issuer: issuer.issuer });
      expect(payload.iss).toBe(issuer.issuer);
    } finally {
      issuerSet.server.close();
    }
  });
});

/** What a test key endpoint does with the next GET. */
type Answer = { keys: TestIssuer[] } | { body: object } | { status: number } | 'hang';

/** A loopback key endpoint whose answer the test changes as it goes; it counts the fetches. */
async function keyEndpoint(initial: Answer) {
  let answer = initial;
  let fetches = 0;
  const held: ServerResponse[] = [];
  const server = createServer(async (_request, response) => {
    fetches++;
    const now = answer;
    if (now === 'hang') return void held.push(response);
    if ('status' in now) return void response.writeHead(now.status).end();
    const body = 'body' in now ? now.body : { keys: await Promise.all(now.keys.map(async (issuer) => ({ ...(await exportJWK(issuer.publicKey)), kid: issuer.kid, alg: 'ES256', use: 'sig' }))) };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    answer: (next: Answer) => void (answer = next),
    fetches: () => fetches,
    close: () => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const verifyWith = (keys: JWTVerifyGetKey, issuer: TestIssuer) => async () => (await jwtVerify(await issuer.token(), keys, { issuer: issuer.issuer })).payload.iss;

describe("an identity provider's key endpoint that fails", () => {
  const issuer = new TestIssuer('https://idp.flaky.test.example', ['*'], join(tmpdir(), 'unused.json'));
  const rotated = new TestIssuer(issuer.issuer, ['*'], join(tmpdir(), 'unused.json'));
  let endpoint: Awaited<ReturnType<typeof keyEndpoint>>;
  afterEach(async () => {
    vi.restoreAllMocks();
    await endpoint?.close();
  });

  it('leaves the keys fetched before serving, says so once, and lets a withdrawn key go with the next fetch that succeeds', async () => {
    const said = vi.spyOn(console, 'error').mockImplementation(() => {});
    endpoint = await keyEndpoint({ keys: [issuer] });
    const verify = verifyWith(remoteKeySet(new URL(endpoint.url), { timeoutMs: 2_000, refreshMs: 100 }), issuer);
    await expect(verify()).resolves.toBe(issuer.issuer);
    endpoint.answer({ status: 500 });
    for (let round = 0; round < 3; round++) {
      await sleep(150);
      await expect(verify()).resolves.toBe(issuer.issuer);
    }
    await sleep(50);
    expect(endpoint.fetches()).toBeGreaterThanOrEqual(3);
    expect(said).toHaveBeenCalledTimes(1);
    expect(String(said.mock.calls[0]![0])).toMatch(/could not be fetched.*keys fetched before still serve/);
    // The provider withdraws the key: the token still verifies while the new set is on its way, then never again.
    endpoint.answer({ keys: [rotated] });
    await sleep(150);
    await verify();
    await sleep(50);
    await expect(verify()).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  it('refuses to serve keys older than maxStaleMs while the endpoint stays down', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    endpoint = await keyEndpoint({ keys: [issuer] });
    const verify = verifyWith(remoteKeySet(new URL(endpoint.url), { timeoutMs: 2_000, refreshMs: 50, maxStaleMs: 200 }), issuer);
    await expect(verify()).resolves.toBe(issuer.issuer);
    endpoint.answer({ status: 503 });
    await sleep(250);
    await expect(verify()).rejects.toBeInstanceOf(KeySetUnavailable);
    endpoint.answer({ keys: [issuer] });
    await sleep(1_100);
    await expect(verify()).resolves.toBe(issuer.issuer);
  });

  it('fetches keys it never had at most once a second while the endpoint fails, whatever the tokens', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    endpoint = await keyEndpoint({ status: 500 });
    const verify = verifyWith(remoteKeySet(new URL(endpoint.url), { timeoutMs: 2_000 }), issuer);
    for (let attempt = 0; attempt < 20; attempt++) await expect(verify()).rejects.toBeInstanceOf(KeySetUnavailable);
    expect(endpoint.fetches()).toBe(1);
    await sleep(1_100);
    endpoint.answer({ keys: [issuer] });
    await expect(verify()).resolves.toBe(issuer.issuer);
    expect(endpoint.fetches()).toBe(2);
  });

  it('gives up on a fetch that hangs after timeoutMs, and reads an answer that is not a key set as unavailable', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    endpoint = await keyEndpoint('hang');
    const verify = verifyWith(remoteKeySet(new URL(endpoint.url), { timeoutMs: 200 }), issuer);
    const started = Date.now();
    await expect(verify()).rejects.toBeInstanceOf(KeySetUnavailable);
    expect(Date.now() - started).toBeLessThan(2_000);
    endpoint.answer({ body: { issuer: 'not a key set' } });
    await sleep(1_100);
    const fetched = endpoint.fetches();
    await expect(verify()).rejects.toBeInstanceOf(KeySetUnavailable);
    expect(endpoint.fetches()).toBe(fetched + 1);
  });

  it('fetches at once for a kid it does not hold (a rotated-in key), and calls that fetch failing unavailable', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    endpoint = await keyEndpoint({ keys: [issuer] });
    const keys = remoteKeySet(new URL(endpoint.url), { timeoutMs: 2_000, cooldownMs: 0 });
    await expect(verifyWith(keys, issuer)()).resolves.toBe(issuer.issuer);
    endpoint.answer({ keys: [issuer, rotated] });
    await expect(verifyWith(keys, rotated)()).resolves.toBe(issuer.issuer);
    const third = new TestIssuer(issuer.issuer, ['*'], join(tmpdir(), 'unused.json'));
    endpoint.answer({ status: 500 });
    await expect(verifyWith(keys, third)()).rejects.toBeInstanceOf(KeySetUnavailable);
    await expect(verifyWith(keys, issuer)()).resolves.toBe(issuer.issuer);
  });

  it('fetches for made-up kids at most once per cool-down while the endpoint fails, and answers the rest without a fetch', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    endpoint = await keyEndpoint({ keys: [issuer] });
    const keys = remoteKeySet(new URL(endpoint.url), { timeoutMs: 2_000, cooldownMs: 1_000 });
    await expect(verifyWith(keys, issuer)()).resolves.toBe(issuer.issuer);
    await sleep(1_100);
    const fetchedBefore = endpoint.fetches();
    endpoint.answer({ status: 500 });
    // Tokens anyone can make: a kid the issuer never had, no valid signature needed to ask.
    const madeUp = () => new TestIssuer(issuer.issuer, ['*'], join(tmpdir(), 'unused.json'));
    for (let attempt = 0; attempt < 3; attempt++) await expect(verifyWith(keys, madeUp())()).rejects.toBeInstanceOf(KeySetUnavailable);
    expect(endpoint.fetches()).toBe(fetchedBefore + 1);
    // The keys in hand still serve the tokens they verify.
    await expect(verifyWith(keys, issuer)()).resolves.toBe(issuer.issuer);
    // After a fetch that succeeded, a kid the issuer has not is no key of the issuer's, within the cool-down too.
    const fresh = remoteKeySet(new URL(endpoint.url), { timeoutMs: 2_000, cooldownMs: 60_000 });
    endpoint.answer({ keys: [issuer] });
    await expect(verifyWith(fresh, issuer)()).resolves.toBe(issuer.issuer);
    const fetched = endpoint.fetches();
    await expect(verifyWith(fresh, madeUp())()).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(endpoint.fetches()).toBe(fetched);
  });

  describe('at the gateway', () => {
    let federation: Federation;
    const idp = new TestIssuer('https://idp.down.test.example', ['politie'], join(tmpdir(), 'unused.json'));

    beforeAll(async () => {
      endpoint = await keyEndpoint('hang');
      federation = await startFederation({ deadlineMs: 1_000, gateway: { issuers: [{ issuer: idp.issuer, orgs: idp.orgs, jwksUrl: endpoint.url, acceptJwtTyp: false }] } });
    }, 120_000);
    afterAll(async () => {
      await federation?.stop();
      await endpoint?.close();
    });

    it('answers 503 ISSUER_UNAVAILABLE with Retry-After, not 401, within the deadline, and audits it as an error; the token verifies once the keys can be had', async () => {
      vi.spyOn(console, 'error').mockImplementation(() => {});
      const token = await idp.token({ sub: 'officer-idp-down' });
      const query = `query Bans($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete underActiveBan } }`;
      const started = Date.now();
      const refused = await federation.query(token, query, { bsn: PERSONS.subject });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(refused.headers.get('www-authenticate')).toBeNull();
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('ISSUER_UNAVAILABLE');
      const record = accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), 'unknown').at(-1);
      expect(record).toMatchObject({ decision: 'DENY:ISSUER_UNAVAILABLE', outcome: 'ERROR', rule: 'the issuer key set could not be fetched', partners: [] });

      endpoint.answer({ keys: [idp] });
      // Past the second in which a failed fetch is not tried again.
      await sleep(1_100);
      const answered = await federation.query(token, query, { bsn: PERSONS.subject });
      expect(answered.status).toBe(200);
      expect(answered.body.data?.activeBans.complete).toBe(true);
    });
  });
});
