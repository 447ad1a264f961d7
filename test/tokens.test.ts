import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../gateway/auth/caller-token.ts';
import { DownstreamTokens } from '../gateway/auth/downstream-token.ts';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { fixedClock, systemClock } from '../lib/clock.ts';
import { AT, PERSONS } from './support/fixtures.ts';
import { type Federation, startFederation } from './support/federation.ts';
import { accessRecordsOf } from './support/node-calls.ts';

// DESIGN §4 (tokens) and §8 (errors): every refused caller token is 401 UNAUTHENTICATED with
// `WWW-Authenticate: Bearer error="invalid_token"`; a valid token for a purpose the caller may not
// use is 403 FORBIDDEN. Nodes accept only the short-lived token the gateway minted for them.

const ACTIVE_BANS = `query Bans($bsn: String!, $at: DateTime) {
  activeBans(subject: { bsn: $bsn }, at: $at) { complete underActiveBan bans { id } } }`;
const HIT_CHECK = `query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { complete anyHit } }`;
const NODE_RECORDS = `{ records(bsns: ["${PERSONS.subject}"], subjectRefs: ["ref-x-0000000000000000"], at: "2026-01-01T00:00:00Z") { __typename } }`;

const now = () => Math.floor(Date.now() / 1000);
const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A token as the caller would send it; null sends no Authorization header at all. */
type MakeToken = (federation: Federation) => Promise<string | null>;

/** Re-signs the claims of a valid token with a header and key the test chooses. */
async function resign(federation: Federation, header: Record<string, unknown>, key: Parameters<SignJWT['sign']>[0]): Promise<string> {
  const claims = decodeJwt(await federation.issuer.token());
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: federation.issuer.kid, ...header } as never).sign(key);
}

describe('caller tokens (DESIGN §4)', () => {
  let federation: Federation;

  beforeAll(async () => {
    federation = await startFederation();
  }, 60_000);
  afterAll(() => federation?.stop());

  describe('the gateway admits a valid caller token and refuses every broken one with 401', () => {
    const refused: [string, MakeToken][] = [
      ['no Authorization header', async () => null],
      [
        'an unsecured token (alg none)',
        async (f) => {
          const [, payload] = (await f.issuer.token()).split('.');
          return `${base64url({ alg: 'none', typ: 'at+jwt' })}.${payload}.`;
        },
      ],
      [
        "an HS256 token keyed with the issuer's public key (algorithm confusion)",
        async (f) => {
          const pem = f.issuer.publicKey.export({ type: 'spki', format: 'pem' }) as string;
          return resign(f, { alg: 'HS256' }, new TextEncoder().encode(pem));
        },
      ],
      [
        "an HS256 token keyed with the issuer's public JWK",
        async (f) => resign(f, { alg: 'HS256' }, new TextEncoder().encode(JSON.stringify(await exportJWK(f.issuer.publicKey)))),
      ],
      [
        'a tampered signature',
        async (f) => {
          const [header, payload, signature] = (await f.issuer.token()).split('.');
          // The first character carries six signature bits (the last one only two plus padding).
          const flipped = (signature![0] === 'A' ? 'B' : 'A') + signature!.slice(1);
          return `${header}.${payload}.${flipped}`;
        },
      ],
      [
        "another key's signature under the issuer's kid",
        async (f) => resign(f, {}, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
      ],
      ['an expired token (beyond the clock tolerance)', (f) => f.issuer.token({ iat: now() - 600, exp: now() - 120 })],
      ['a token not valid before a moment beyond the clock tolerance', (f) => f.issuer.token({ nbf: now() + 120 })],
      ['a token issued longer ago than the maximum token age', (f) => f.issuer.token({ iat: now() - 7200, exp: now() + 300 })],
      ['a token issued in the future beyond the clock tolerance', (f) => f.issuer.token({ iat: now() + 600, exp: now() + 900 })],
      ['a token for another audience', (f) => f.issuer.token({ aud: 'some-other-gateway' })],
      ['a token without an audience', (f) => f.issuer.token({ aud: undefined })],
      ['a token from an untrusted issuer', (f) => f.issuer.token({ iss: 'https://idp.untrusted.example' })],
      ['an issuer speaking for an organisation it is not bound to', (f) => f.politieIssuer.token({ org: 'om', roles: ['om-medewerker'] })],
      ['a token without jti', (f) => f.issuer.token({ jti: undefined })],
      ['a token without exp', (f) => f.issuer.token({ exp: undefined })],
      ['a token without iat', (f) => f.issuer.token({ iat: undefined })],
      ['a token without sub', (f) => f.issuer.token({ sub: undefined })],
      ['a token without purpose', (f) => f.issuer.token({ purpose: undefined })],
      ['a token without org', (f) => f.issuer.token({ org: undefined })],
      ['a token of type JWT from an issuer not configured to accept it', (f) => f.issuer.token({}, { typ: 'JWT' })],
      ['a token without a type', (f) => f.issuer.token({}, { typ: undefined })],
      ['a token larger than 8 KiB', (f) => f.issuer.token({ padding: 'x'.repeat(9_000) })],
      ['a header that is not "Bearer <token>"', async (f) => `${await f.issuer.token()} trailing`],
      ['a string that is no JWS at all', async () => 'not-a-token'],
    ];

    it.each(refused)('refuses %s with 401 UNAUTHENTICATED and WWW-Authenticate', async (_name, make) => {
      const token = await make(federation);
      const { status, headers, body } = await federation.query(token, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 });
      expect(status).toBe(401);
      expect(body.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
      expect(body.data ?? null).toBeNull();
      const challenge = headers.get('www-authenticate') ?? '';
      expect(challenge).toContain('Bearer');
      expect(challenge).toContain('invalid_token');
    });

    const admitted: [string, MakeToken][] = [
      ['a valid token', (f) => f.issuer.token()],
      ['a token that expired within the clock tolerance', (f) => f.issuer.token({ iat: now() - 300, exp: now() - 10 })],
      ['a token whose nbf lies within the clock tolerance', (f) => f.issuer.token({ nbf: now() + 10 })],
      ['a bound issuer speaking for its own organisation', (f) => f.politieIssuer.token({ org: 'politie' })],
      ['a typ given as the media type application/at+jwt', (f) => f.issuer.token({}, { typ: 'application/at+jwt' })],
    ];

    it.each(admitted)('admits %s with 200 and data', async (_name, make) => {
      const token = await make(federation);
      const { status, body } = await federation.query(token, ACTIVE_BANS, { bsn: PERSONS.subject, at: AT.may2026 });
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(body.data!.activeBans).toMatchObject({ complete: true, underActiveBan: true });
    });
  });

  describe('a valid token for a purpose the caller may not use is FORBIDDEN, not UNAUTHENTICATED', () => {
    const vt = { org: 'veilig-thuis-haaglanden', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'VT-2026-1' };
    const forbidden: [string, Record<string, unknown>][] = [
      ['an unknown purpose', { ...vt, purpose: 'curiosity' }],
      ['a purpose not allowed for the organisation', { ...vt, org: 'politie' }],
      ['a purpose not allowed for the role', { ...vt, roles: ['privacy-officer'] }],
      ['a missing case_ref where the purpose requires one', { ...vt, case_ref: undefined }],
      ['an empty case_ref where the purpose requires one', { ...vt, case_ref: '' }],
      ['a case_ref with a space', { ...vt, case_ref: 'VT 2026 1' }],
      ['a case_ref starting with a hyphen', { ...vt, case_ref: '-VT-2026-1' }],
      ['a case_ref longer than 64 characters', { ...vt, case_ref: `VT-${'1'.repeat(64)}` }],
      ['a case_ref longer than 256 characters', { ...vt, case_ref: `VT-${'1'.repeat(300)}` }],
      ['a case_ref that is a number', { ...vt, case_ref: 20261 }],
      ['a case_ref that is an object', { ...vt, case_ref: { id: 'VT-2026-1' } }],
    ];

    it.each(forbidden)('answers %s with 403 FORBIDDEN', async (_name, claims) => {
      const token = await federation.issuer.token(claims);
      const { status, headers, body } = await federation.query(token, HIT_CHECK, { bsn: PERSONS.subject });
      expect(status).toBe(403);
      expect(body.errors![0]!.extensions!.code).toBe('FORBIDDEN');
      expect(body.data ?? null).toBeNull();
      expect(headers.get('www-authenticate')).toBeNull();
      // The rule is named within the policy set, never by a path of the gateway's machine.
      expect(String(body.errors![0]!.extensions!.reason)).toMatch(/^(?:purposes\/[\w-]+\.yaml: \w+|unknown purpose|case_ref format)$/);
    });

    it('admits the same caller with an allowed purpose and a well-formed case_ref', async () => {
      const { status, body } = await federation.query(await federation.issuer.token(vt), HIT_CHECK, { bsn: PERSONS.subject });
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(body.data!.hitCheck).toMatchObject({ complete: true, anyHit: true });
    });

    // What a careless caller writes in a case_ref (a BSN, an address) must not land in the chain,
    // which can never be cleaned: a case_ref that is not well-formed is recorded as none.
    const CARELESS_CASE_REF = `BSN ${PERSONS.subject} @ 52.0586,4.3443`;

    it.each([20261, CARELESS_CASE_REF])('admits a malformed case_ref (%s) where the purpose needs none, and records no case_ref', async (caseRef) => {
      const sub = `officer-${randomUUID()}`;
      const token = await federation.issuer.token({ sub, org: 'politie', roles: ['privacy-officer'], purpose: 'privacy-audit', case_ref: caseRef });
      const { status, body } = await federation.query(token, '{ accessLog(filter: { purpose: "privacy-audit" }) { edges { node { traceId } } } }');
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub)).toMatchObject([{ caseRef: null, decision: 'ALLOW' }]);
    });

    it('refuses a malformed case_ref where the purpose requires one, and records no case_ref', async () => {
      const sub = `vt-${randomUUID()}`;
      const token = await federation.issuer.token({ ...vt, sub, case_ref: CARELESS_CASE_REF });
      const { status } = await federation.query(token, HIT_CHECK, { bsn: PERSONS.subject });
      expect(status).toBe(403);
      const records = accessRecordsOf(join(federation.dataDir, 'gateway', 'audit.db'), sub);
      expect(records).toMatchObject([{ caseRef: null, decision: 'DENY:FORBIDDEN', rule: 'case_ref format' }]);
      expect(JSON.stringify(records)).not.toContain(PERSONS.subject);
    });
  });

  describe('a node refuses anything but a gateway-minted token for itself', () => {
    const caller = (): Caller => ({
      iss: federation.issuer.issuer,
      sub: 'worker-1',
      org: 'politie',
      roles: ['politie-medewerker'],
      purpose: 'police-ban-enforcement',
      caseRef: 'PL-1',
      jti: randomUUID(),
    });
    const downstream = () => new DownstreamTokens(new GatewayKeys(federation.dataDir), systemClock);

    async function askPolitie(token: string | null) {
      const response = await fetch(`${federation.nodes.politie.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query: NODE_RECORDS }),
      });
      return { status: response.status, body: (await response.json()) as { data?: any; errors?: { extensions?: any }[] } };
    }

    const refused: [string, () => Promise<string | null>][] = [
      ['no Authorization header', async () => null],
      ["the caller's own token", () => federation.issuer.token()],
      ['a gateway-minted token for another node', () => downstream().mint('om', caller())],
      [
        'a token claiming to be the gateway, signed with another key',
        async () => {
          const claims = decodeJwt(await downstream().mint('politie', caller()));
          const { kid } = decodeProtectedHeader(await downstream().mint('politie', caller()));
          const { privateKey } = generateKeyPairSync('ed25519');
          return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: kid! }).sign(privateKey);
        },
      ],
    ];

    it.each(refused)('refuses %s with 401 UNAUTHENTICATED', async (_name, make) => {
      const { status, body } = await askPolitie(await make());
      expect(status).toBe(401);
      expect(body.errors![0]!.extensions!.code).toBe('UNAUTHENTICATED');
      expect(body.data ?? null).toBeNull();
    });

    it('answers a token the gateway minted for it', async () => {
      const { status, body } = await askPolitie(await downstream().mint('politie', caller()));
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect(body.data.records).toEqual([{ __typename: 'NodeRecord' }]);
    });
  });

  describe('the downstream token the gateway mints', () => {
    it("names the gateway as issuer and actor, the node as audience, lives at most 60 s and carries the caller's identity", async () => {
      const caller: Caller = {
        iss: federation.issuer.issuer,
        sub: 'worker-7',
        org: 'reclassering',
        roles: ['reclassering-medewerker'],
        purpose: 'reclassering-supervision',
        caseRef: 'RC-2026-7',
        jti: randomUUID(),
      };
      const token = await new DownstreamTokens(new GatewayKeys(federation.dataDir), systemClock).mint('om', caller);
      const header = decodeProtectedHeader(token);
      const claims = decodeJwt(token);
      expect(header).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
      expect(claims).toMatchObject({
        iss: 'soh-gateway',
        aud: 'om',
        sub: 'worker-7',
        org: 'reclassering',
        roles: ['reclassering-medewerker'],
        purpose: 'reclassering-supervision',
        case_ref: 'RC-2026-7',
        act: { sub: 'soh-gateway' },
      });
      expect(claims.jti).toEqual(expect.any(String));
      expect(claims.jti).not.toBe(caller.jti);
      expect(claims.exp! - claims.iat!).toBeGreaterThan(0);
      expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(60);

      const response = await fetch(`${federation.gatewayUrl}/.well-known/jwks.json`);
      expect(response.status).toBe(200);
      const jwks = (await response.json()) as { keys: { kid?: string; d?: string }[] };
      expect(jwks.keys.map((key) => key.kid)).toContain(header.kid);
      // The published set holds public keys only.
      expect(jwks.keys.every((key) => key.d === undefined)).toBe(true);
    });

    it('is signed once per caller and node while it has well over a deadline of life left, then renewed', async () => {
      const clock = fixedClock(Date.parse('2026-11-24T10:00:00Z'));
      const tokens = new DownstreamTokens(new GatewayKeys(federation.dataDir), clock);
      const caller = (sub: string): Caller => ({ iss: federation.issuer.issuer, sub, org: 'politie', roles: ['politie-medewerker'], purpose: 'police-ban-enforcement', caseRef: 'PL-1', jti: randomUUID() });

      const [first, concurrent] = await Promise.all([tokens.mint('om', caller('worker-1')), tokens.mint('om', caller('worker-1'))]);
      expect(concurrent).toBe(first);
      expect(await tokens.mint('politie', caller('worker-1'))).not.toBe(first);
      expect(await tokens.mint('om', caller('worker-2'))).not.toBe(first);

      const { exp } = decodeJwt(first);
      clock.set((exp! - 16) * 1000);
      expect(await tokens.mint('om', caller('worker-1'))).toBe(first);
      clock.set((exp! - 15) * 1000);
      const renewed = await tokens.mint('om', caller('worker-1'));
      expect(renewed).not.toBe(first);
      expect(decodeJwt(renewed).exp).toBe(exp! + 45);
    });
  });
});
