import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@redis/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewaySettings, gatewayConfig } from '../gateway/config.ts';
import { type RunningGateway, startGateway } from '../gateway/start.ts';
import { NODE_IDS } from '../lib/partners.ts';
import { ALL_BSNS, PERSONS } from './support/fixtures.ts';
import { type Federation, type GraphQLBody, startFederation } from './support/federation.ts';

// The gateway runs as N replicas (README, Scale-out): with SOH_RATE_LIMIT_REDIS_URL they draw from
// the same buckets, so that N replicas allow a caller, or checks of one subject, the limit once.

const REDIS_URL = process.env['SOH_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { complete anyHit } }`;
const ACTIVE_BANS = `query Bans($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete underActiveBan } }`;
const LIMITS = { perCaller: { burst: 3, perMinute: 1 }, perSubject: { burst: 4, perMinute: 1 } };

async function ask(url: string, token: string, query: string, variables: Record<string, unknown>) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLBody };
}

describe('rate limits shared by gateway replicas through Redis', () => {
  const keyPrefix = `soh-test-${randomUUID()}:`;
  const dirs: string[] = [];
  const replicas: RunningGateway[] = [];
  const redis = createClient({ url: REDIS_URL });
  let federation: Federation;
  let replicaA: string;
  let replicaB: string;

  /** Another gateway replica beside the federation's: its own data directory and audit chain, the same keys and nodes. */
  async function startReplica(settings: Partial<GatewaySettings>): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'soh-replica-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'gateway'));
    cpSync(join(federation.dataDir, 'gateway', 'keys'), join(dir, 'gateway', 'keys'), { recursive: true });
    cpSync(join(federation.dataDir, 'gateway', 'subject-ref.key'), join(dir, 'gateway', 'subject-ref.key'));
    const replica = await startGateway(
      gatewayConfig.parse({
        port: 0,
        dataDir: dir,
        policyDir: fileURLToPath(new URL('../policies/', import.meta.url)),
        issuers: [{ issuer: federation.issuer.issuer, orgs: federation.issuer.orgs, jwksFile: federation.issuer.jwksFile }],
        deadlineMs: 5_000,
        nodes: Object.fromEntries(NODE_IDS.map((id) => [id, federation.nodes[id].url])),
        ...settings,
      }),
    );
    replicas.push(replica);
    return replica.url;
  }

  const keysInRedis = async () => {
    const keys: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `${keyPrefix}*` })) keys.push(...batch.map(String));
    return keys;
  };

  beforeAll(async () => {
    await redis.connect();
    federation = await startFederation({ deadlineMs: 5_000, gateway: { rateLimits: { ...LIMITS, redisUrl: REDIS_URL, keyPrefix } } });
    replicaA = federation.gatewayUrl;
    replicaB = await startReplica({ rateLimits: { ...LIMITS, redisUrl: REDIS_URL, keyPrefix } });
  }, 90_000);

  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.close()));
    await federation?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    const keys = await keysInRedis();
    if (keys.length > 0) await redis.del(keys);
    redis.destroy();
  });

  const vtCaller = (sub: string) =>
    federation.issuer.token({ sub, org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-1' });

  it("counts one caller's requests on every replica against one limit", async () => {
    const sub = `agent-${randomUUID()}`;
    const statuses = [];
    for (const url of [replicaA, replicaB, replicaA, replicaB]) {
      statuses.push((await ask(url, await federation.issuer.token({ sub }), ACTIVE_BANS, { bsn: PERSONS.unrelated })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await ask(replicaA, await federation.issuer.token({ sub }), ACTIVE_BANS, { bsn: PERSONS.unrelated });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.body.errors!.map((error) => error.extensions!['code'])).toEqual(['RATE_LIMITED']);
  });

  it('counts Veilig Thuis checks of one subject on every replica against one limit, whoever asks', async () => {
    const answers = [];
    for (const url of [replicaA, replicaB, replicaA, replicaB, replicaA]) answers.push(await ask(url, await vtCaller(`vt-${randomUUID()}`), HIT_CHECK, { bsn: PERSONS.vtOnly }));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 429]);
    expect(JSON.stringify(answers[4]!.body)).not.toContain(PERSONS.vtOnly);
    // Another subject is still checked, on either replica.
    expect((await ask(replicaB, await vtCaller(`vt-${randomUUID()}`), HIT_CHECK, { bsn: PERSONS.unknown })).status).toBe(200);
  });

  it('keeps in Redis only callers and subject references, never a BSN, each bucket expiring once it would be full again', async () => {
    // One check of a subject: its bucket of 4 is full again a minute later, and gone then.
    const before = new Set(await keysInRedis());
    expect((await ask(replicaA, await vtCaller(`vt-${randomUUID()}`), HIT_CHECK, { bsn: PERSONS.unrelated })).status).toBe(200);
    const once = (await keysInRedis()).filter((key) => key.startsWith(`${keyPrefix}subject:`) && !before.has(key));
    expect(once).toHaveLength(1);
    expect(await redis.pTTL(once[0]!)).toBeGreaterThan(0);
    expect(await redis.pTTL(once[0]!)).toBeLessThanOrEqual(60_000);

    const keys = await keysInRedis();
    expect(keys.some((key) => key.startsWith(`${keyPrefix}caller:`))).toBe(true);
    const subjectKeys = keys.filter((key) => key.startsWith(`${keyPrefix}subject:`));
    expect(subjectKeys.length).toBeGreaterThan(0);
    for (const key of subjectKeys) expect(key.slice(`${keyPrefix}subject:`.length)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    for (const key of keys) {
      const stored = JSON.stringify([key, await redis.hGetAll(key)]);
      for (const bsn of ALL_BSNS) expect(stored).not.toContain(bsn);
      const ttl = await redis.pTTL(key);
      // Refilling a caller's bucket of 3 at 1 a minute takes at most 3 minutes, a subject's of 4, 4.
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual((key.startsWith(`${keyPrefix}subject:`) ? 4 : 3) * 60_000);
    }
  });

  it('answers when Redis stops replying on an open connection, counting in the replica', async () => {
    // Between the replica and Redis, a proxy that can stop passing commands on: a hung Redis, or a
    // dead network path that never closes the connection.
    const upstream = new URL(REDIS_URL);
    let stalled = false;
    const proxy = createServer((client) => {
      const server = connect(Number(upstream.port || 6379), upstream.hostname);
      client.on('data', (chunk) => stalled || server.write(chunk));
      server.on('data', (chunk) => client.write(chunk));
      for (const [socket, other] of [[client, server], [server, client]] as const) {
        socket.on('error', () => other.destroy());
        socket.on('close', () => other.destroy());
      }
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const replica = await startReplica({ rateLimits: { ...LIMITS, redisUrl: `redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`, keyPrefix } });
      const counted = `agent-${randomUUID()}`;
      expect((await ask(replica, await federation.issuer.token({ sub: counted }), ACTIVE_BANS, { bsn: PERSONS.subject })).status).toBe(200);
      expect(await keysInRedis()).toContain(`${keyPrefix}caller:${federation.issuer.issuer} ${counted}`);

      stalled = true;
      const sub = `agent-${randomUUID()}`;
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await ask(replica, await federation.issuer.token({ sub }), ACTIVE_BANS, { bsn: PERSONS.subject }));
      expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
      expect(answers[0]!.body.data!.activeBans).toEqual({ complete: true, underActiveBan: true });
    } finally {
      proxy.close();
    }
  });

  it('answers while Redis is unreachable, counting in each replica until it is back', async () => {
    // Port 1 on loopback: nothing listens there, so every command fails at once.
    const alone = await startReplica({ rateLimits: { ...LIMITS, redisUrl: 'redis://127.0.0.1:1', keyPrefix } });
    const sub = `agent-${randomUUID()}`;
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await ask(alone, await federation.issuer.token({ sub }), ACTIVE_BANS, { bsn: PERSONS.subject }));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 429]);
    expect(answers[0]!.body.data!.activeBans).toEqual({ complete: true, underActiveBan: true });
  });
});
