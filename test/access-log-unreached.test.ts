import { randomUUID } from 'node:crypto';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_BSNS, PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { hitCheckInTrace } from './support/node-calls.ts';

// DESIGN §7: an officer sees a request their organisation's node returned a HIT for. A node the
// gateway gave up on may still have answered it late, and its own records say so; but a node the
// call never left the gateway for (circuit open, deadline passed first) cannot have seen the
// request, and its word that it did must not open the request to its officer.

const VT_ORG = 'veilig-thuis-rotterdam-rijnmond';
const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { subjectRef partners { partner status } } }`;
const ACCESS_LOG = `query Log($filter: AccessLogFilter!) { accessLog(filter: $filter, first: 100) { edges { node { traceId requester { sub } } } } }`;
/** The gateway's circuit breaker: open after five failures in a row, for five seconds (gateway/federation/breaker.ts). */
const BREAKER_COOLDOWN_MS = 5_000;

/** Stands between the gateway and probation's node: passes calls on, refuses them, or swallows them unanswered. */
function probationLine() {
  let mode: 'forward' | 'refuse' | 'swallow' = 'forward';
  let target = { host: '127.0.0.1', port: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (mode === 'refuse') return client.destroy();
    if (mode === 'swallow') return client.on('data', () => {});
    const node = connect(target.port, target.host);
    node.on('error', () => client.destroy());
    client.on('close', () => node.destroy());
    node.on('close', () => client.destroy());
    client.pipe(node).pipe(client);
  });
  return {
    server,
    setTarget: (url: string) => {
      const { hostname, port } = new URL(url);
      target = { host: hostname, port: Number(port) };
    },
    setMode: (next: typeof mode) => {
      mode = next;
      // Calls waiting on a connection made in an earlier mode end with it.
      for (const socket of sockets) socket.destroy();
    },
  };
}

describe('accessLog and partners the gateway never reached', () => {
  const line = probationLine();
  let federation: Federation;

  beforeAll(async () => {
    await new Promise<void>((resolve) => line.server.listen(0, '127.0.0.1', resolve));
    const lineUrl = `http://127.0.0.1:${(line.server.address() as AddressInfo).port}`;
    // A deadline a loaded machine still meets: only the swallowed call may miss it.
    federation = await startFederation({ deadlineMs: 5_000, gateway: { nodes: { reclassering: lineUrl } } });
    line.setTarget(federation.nodes.reclassering.url);
  }, 90_000);
  afterAll(async () => {
    await federation?.stop();
    line.server.close();
  });

  const vtWorker = (sub: string) => federation.issuer.token({ org: VT_ORG, roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-2026-000123', sub });

  function gatewayAccessRecord(sub: string): any {
    const db = new Database(join(federation.dataDir, 'gateway', 'audit.db'), { readonly: true });
    try {
      return JSON.parse((db.prepare("SELECT body FROM records WHERE kind = 'access' AND requester_sub = ?").get(sub) as { body: string }).body);
    } finally {
      db.close();
    }
  }

  /** Probation's node claiming, in the request's own trace, that it found the subject. */
  const hitInTrace = (sub: string, subjectRef: string, traceId: string) =>
    hitCheckInTrace(federation.dataDir, { id: 'reclassering', url: federation.nodes.reclassering.url }, { sub, org: VT_ORG, bsn: PERSONS.subject, subjectRef, traceId });

  it("shows a late partner's officer the request its node was sent, and not the one the gateway never sent it", async () => {
    const sent = `vt-sent-${randomUUID()}`;
    const neverSent = `vt-never-${randomUUID()}`;
    // Sent, and swallowed: the node may have answered after the deadline.
    line.setMode('swallow');
    const sentAnswer = await federation.query(await vtWorker(sent), HIT_CHECK, { bsn: PERSONS.subject });
    // Five refused calls in a row open probation's circuit; the next request never leaves the gateway for it.
    line.setMode('refuse');
    for (let i = 0; i < 5; i++) await federation.query(await vtWorker(`vt-refused-${randomUUID()}`), HIT_CHECK, { bsn: PERSONS.unknown });
    const neverSentAnswer = await federation.query(await vtWorker(neverSent), HIT_CHECK, { bsn: PERSONS.subject });
    line.setMode('forward');
    for (const answer of [sentAnswer, neverSentAnswer]) {
      expect(answer.body.data!.hitCheck.partners.at(-1)).toEqual({ partner: 'RECLASSERING', status: 'UNAVAILABLE' });
    }

    const sentRecord = gatewayAccessRecord(sent);
    const neverSentRecord = gatewayAccessRecord(neverSent);
    expect(sentRecord.partners.at(-1)).toEqual({ partner: 'RECLASSERING', status: 'UNAVAILABLE' });
    expect(neverSentRecord.partners.at(-1)).toEqual({ partner: 'RECLASSERING', status: 'UNAVAILABLE', reached: false });

    // Probation's node claims a HIT in both traces.
    expect(await hitInTrace(sent, sentAnswer.body.data!.hitCheck.subjectRef, sentRecord.trace_id)).toBe(200);
    expect(await hitInTrace(neverSent, neverSentAnswer.body.data!.hitCheck.subjectRef, neverSentRecord.trace_id)).toBe(200);

    // Once the circuit lets calls through again, the officer's accessLog asks the node.
    await new Promise((resolve) => setTimeout(resolve, BREAKER_COOLDOWN_MS));
    const officer = await federation.issuer.token({ org: 'reclassering', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: undefined, sub: 'fg-reclassering' });
    const answer = await federation.query(officer, ACCESS_LOG, { filter: { purpose: 'vt-hit-check' } });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    expect(answer.body.errors).toBeUndefined();
    const seen = answer.body.data!.accessLog.edges.map((edge: any) => edge.node.requester.sub);
    expect(seen).toContain(sent);
    expect(seen).not.toContain(neverSent);
    for (const bsn of ALL_BSNS) expect(JSON.stringify(answer.body)).not.toContain(bsn);
  }, 60_000);
});
