import { generateKeyPairSync } from 'node:crypto';
import { type JWTPayload, createLocalJWKSet, exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { callerTokenVerifier } from '../gateway/auth/caller-token.ts';
import { gatewayConfig } from '../gateway/config.ts';
import { fixedClock } from '../lib/clock.ts';
import { ISSUER, POLICY, T0, reasonOf, signCallerToken } from './support/caller-tokens.ts';

// DESIGN §4: the claims of a caller token, as the gateway admits or refuses them. Refusals here
// are the token's (401); see test/tokens.test.ts for the same through a running gateway.

const current = generateKeyPairSync('ed25519');
const next = generateKeyPairSync('ed25519');

/** A verifier whose issuer publishes its current key and, as during a rotation, its next one. */
async function verifierWithTwoKeys() {
  const keys = createLocalJWKSet({
    keys: [
      { ...(await exportJWK(current.publicKey)), kid: 'current', alg: 'EdDSA' },
      { ...(await exportJWK(next.publicKey)), kid: 'next', alg: 'EdDSA' },
    ],
  });
  const verify = callerTokenVerifier([{ issuer: ISSUER, orgs: ['politie'], keys, acceptJwtTyp: false }], POLICY, fixedClock(T0 * 1000));
  return (token: string) => verify(`Bearer ${token}`);
}

const sign = (claims: JWTPayload = {}, key = current.privateKey, kid?: string) => signCallerToken(key, claims, { kid });
const refusal = reasonOf;

describe('a caller token', () => {
  it('without a kid verifies against whichever key of the issuer signed it, while the issuer publishes two', async () => {
    const verify = await verifierWithTwoKeys();
    await expect(verify(await sign({}))).resolves.toMatchObject({ sub: 'agent-17' });
    await expect(verify(await sign({}, next.privateKey))).resolves.toMatchObject({ sub: 'agent-17' });
    const stranger = generateKeyPairSync('ed25519').privateKey;
    expect(await refusal(verify(await sign({}, stranger)))).toBe('UNAUTHENTICATED: the token signature does not verify');
    // Named, a key is the one tried.
    expect(await refusal(verify(await sign({}, next.privateKey, 'current')))).toBe('UNAUTHENTICATED: the token signature does not verify');
  });

  it('is refused when it speaks for the organisation "unknown", the name kept for requests no token vouched for', async () => {
    const verify = await verifierWithTwoKeys();
    const anyOrg = callerTokenVerifier([{ issuer: ISSUER, orgs: ['*'], keys: createLocalJWKSet({ keys: [{ ...(await exportJWK(current.publicKey)), kid: 'current', alg: 'EdDSA' }] }), acceptJwtTyp: false }], POLICY, fixedClock(T0 * 1000));
    expect(await refusal(anyOrg(`Bearer ${await sign({ org: 'unknown', roles: ['privacy-officer'], purpose: 'privacy-audit' })}`))).toBe('UNAUTHENTICATED: the token lacks a valid org claim');
    await expect(verify(await sign({}))).resolves.toMatchObject({ org: 'politie' });
  });

  it.each([
    ['sub', { sub: 'agent-17\u202e71-tnega' }],
    ['sub', { sub: 'agent\u200b17' }],
    ['roles.0', { roles: ['politie-medewerker\u0000'] }],
    ['purpose', { purpose: 'police-ban-enforcement\n' }],
    ['jti', { jti: 'a\u2028b' }],
    ['sub', { sub: 'mallory\ud800' }],
  ])('is refused when its %s claim holds a control or format character (kept in audit records, shown to officers)', async (claim, claims) => {
    const verify = await verifierWithTwoKeys();
    expect(await refusal(verify(await sign(claims)))).toBe(`UNAUTHENTICATED: the token lacks a valid ${claim} claim`);
  });
});

describe("a gateway configuration's issuers", () => {
  const settings = (issuer: Record<string, unknown>) => ({ dataDir: '/tmp/x', policyDir: '/tmp/y', nodes: {}, issuers: [{ jwksFile: 'keys.json', ...issuer }] });

  it.each([['Politie'], ['veilig-thuis*'], ['politie '], ['']])('refuses an organisation pattern no org can match: %j', (pattern) => {
    expect(gatewayConfig.safeParse(settings({ issuer: 'https://idp.example', orgs: [pattern] })).success).toBe(false);
  });

  it.each([['soh-gateway'], ['soh-dev-issuer']])('refuses an issuer named %s, a name the gateway keeps for itself', (name) => {
    expect(gatewayConfig.safeParse(settings({ issuer: name, orgs: ['politie'] })).success).toBe(false);
  });

  it('takes organisation ids and patterns', () => {
    expect(gatewayConfig.safeParse(settings({ issuer: 'https://idp.example', orgs: ['politie', 'veilig-thuis-*', '*'] })).success).toBe(true);
  });
});
