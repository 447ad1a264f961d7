import { generateKeyPairSync } from 'node:crypto';
import { type JSONWebKeySet, type JWTVerifyGetKey, createLocalJWKSet, exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { REMEMBER_SECONDS, callerTokenVerifier } from '../gateway/auth/caller-token.ts';
import { fixedClock } from '../lib/clock.ts';
import { ISSUER, POLICY, T0, reasonOf, signCallerToken } from './support/caller-tokens.ts';

// A caller's system sends one token with every request of its session, so the gateway remembers
// a token that verified. Remembering must never admit what a fresh verification would refuse,
// except for the bounded window in which a withdrawn key still counts (REMEMBER_SECONDS).

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const JWKS: JSONWebKeySet = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA' }] };

/** A verifier at a clock the test moves, whose issuer's key set the test can withdraw and whose key lookups it counts. */
function setUp() {
  const clock = fixedClock(T0 * 1000);
  let keySet = createLocalJWKSet(JWKS);
  const lookups = { count: 0 };
  const keys: JWTVerifyGetKey = (header, token) => {
    lookups.count++;
    return keySet(header, token);
  };
  const verify = callerTokenVerifier([{ issuer: ISSUER, orgs: ['politie'], keys, acceptJwtTyp: false }], POLICY, clock);
  return {
    verify: (token: string) => verify(`Bearer ${token}`),
    at: (seconds: number) => clock.set(seconds * 1000),
    withdrawKey: () => (keySet = createLocalJWKSet({ keys: [] })),
    lookups,
  };
}

const token = (times: { iat?: number; exp?: number } = {}) => signCallerToken(privateKey, {}, { kid: 'k1', ...times });

describe('the gateway remembers a verified caller token', () => {
  it('verifies a token once and admits it again without verifying its signature again', async () => {
    const { verify, lookups } = setUp();
    const sent = await token();
    const first = await verify(sent);
    const second = await verify(sent);
    expect(second).toEqual(first);
    expect(second).toMatchObject({ iss: ISSUER, sub: 'agent-17', org: 'politie', purpose: 'police-ban-enforcement', caseRef: 'PL-2026-1' });
    expect(lookups.count).toBe(1);
  });

  it('verifies every other token on its own, so a copy with a tampered signature is still refused', async () => {
    const { verify } = setUp();
    const sent = await token();
    await verify(sent);
    const [header, payload, signature] = sent.split('.');
    const tampered = `${header}.${payload}.${(signature![0] === 'A' ? 'B' : 'A') + signature!.slice(1)}`;
    expect(await reasonOf(verify(tampered))).toBe('UNAUTHENTICATED: the token signature does not verify');
  });

  it('refuses a remembered token once it has expired beyond the clock tolerance', async () => {
    const { verify, at } = setUp();
    const sent = await token({ exp: T0 + 600 });
    await verify(sent);
    at(T0 + 600 + POLICY.clockToleranceSeconds - 1);
    expect(await reasonOf(verify(sent))).toBe('admitted');
    at(T0 + 600 + POLICY.clockToleranceSeconds + 1);
    expect(await reasonOf(verify(sent))).toBe('UNAUTHENTICATED: the token has expired');
  });

  it('refuses a remembered token once it is older than the maximum token age', async () => {
    const { verify, at } = setUp();
    const sent = await token({ exp: T0 + 3 * 3600 });
    await verify(sent);
    at(T0 + POLICY.maxTokenAgeSeconds + POLICY.clockToleranceSeconds - 1);
    expect(await reasonOf(verify(sent))).toBe('admitted');
    at(T0 + POLICY.maxTokenAgeSeconds + POLICY.clockToleranceSeconds + 1);
    // jose reports a token past its maximum age as expired.
    expect(await reasonOf(verify(sent))).toBe('UNAUTHENTICATED: the token has expired');
  });

  it(`consults the issuer's keys again after ${REMEMBER_SECONDS} s, so a withdrawn key stops admitting its tokens`, async () => {
    const { verify, at, withdrawKey, lookups } = setUp();
    const sent = await token({ exp: T0 + 3000 });
    await verify(sent);
    withdrawKey();
    at(T0 + REMEMBER_SECONDS - 1);
    expect(await reasonOf(verify(sent))).toBe('admitted');
    expect(lookups.count).toBe(1);
    at(T0 + REMEMBER_SECONDS + 1);
    expect(await reasonOf(verify(sent))).toBe('UNAUTHENTICATED: no key of the issuer matches the token');
    expect(lookups.count).toBe(2);
  });

  it('hands every request the same caller, which none of them can change', async () => {
    const { verify } = setUp();
    const sent = await token();
    const caller = await verify(sent);
    expect(() => ((caller as { purpose: string }).purpose = 'privacy-audit')).toThrow(TypeError);
    expect(() => (caller.roles as string[]).push('privacy-officer')).toThrow(TypeError);
    expect((await verify(sent)).roles).toEqual(['politie-medewerker']);
  });
});
