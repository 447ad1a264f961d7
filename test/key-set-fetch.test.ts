import { type Server, createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issuerKeys } from '../gateway/auth/caller-token.ts';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { PERSONS } from './support/fixtures.ts';
import { type NodeProcess, TestIssuer, startNodeProcess, stopNode } from './support/federation.ts';
import { callNode, nodeTokenMinter } from './support/node-calls.ts';

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

  it("are fetched by the gateway: a caller token verifies against its issuer's key set", async () => {
    const issuer = new TestIssuer('https://idp.bad-port.test.example', ['*'], join(dataDir, 'issuer.json'));
    await issuer.writeJwks();
    const issuerSet = await serveOnBadPort(() => JSON.parse(readFileSync(issuer.jwksFile, 'utf8')));
    try {
      const keys = issuerKeys({ issuer: issuer.issuer, jwksUrl: issuerSet.url });
      const { payload } = await jwtVerify(await issuer.token(), keys, { issuer: issuer.issuer });
      expect(payload.iss).toBe(issuer.issuer);
    } finally {
      issuerSet.server.close();
    }
  });
});
