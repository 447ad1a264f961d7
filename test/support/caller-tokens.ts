import { randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { type JWTPayload, SignJWT } from 'jose';

/** An identity provider of the police, as the verifier unit tests configure it. */
export const ISSUER = 'https://idp.politie.test';
/** The tests' "now", in seconds. */
export const T0 = Date.parse('2026-12-01T10:00:00Z') / 1000;
/** The gateway's defaults (DESIGN §4). */
export const POLICY = { audience: 'soh-gateway', maxTokenBytes: 8192, clockToleranceSeconds: 30, maxTokenAgeSeconds: 3600, caseRefPattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$' };

/** A police officer's token, issued at `iat` (T0) for ten minutes unless the claims say otherwise. */
export function signCallerToken(key: KeyObject, claims: JWTPayload = {}, options: { kid?: string; iat?: number; exp?: number } = {}): Promise<string> {
  const iat = options.iat ?? T0;
  return new SignJWT({ org: 'politie', roles: ['politie-medewerker'], purpose: 'police-ban-enforcement', case_ref: 'PL-2026-1', ...claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...(options.kid ? { kid: options.kid } : {}) })
    .setIssuer(ISSUER)
    .setAudience('soh-gateway')
    .setSubject(typeof claims.sub === 'string' ? claims.sub : 'agent-17')
    .setIssuedAt(iat)
    .setExpirationTime(options.exp ?? iat + 600)
    .setJti(typeof claims.jti === 'string' ? claims.jti : randomUUID())
    .sign(key);
}

/** `admitted`, or the refusal's code and reason. */
export const reasonOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'admitted',
    (error: { extensions?: { code?: string; reason?: string } }) => `${error.extensions?.code}: ${error.extensions?.reason}`,
  );
