import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { loadKeys, loadOrCreateKeys } from './keys.ts';

/**
 * The local development identity provider (DESIGN §4, dev mode only): its keys are generated
 * under <data>/dev-issuer/ on first use; the gateway trusts it only when SOH_DEV=1.
 */
export const DEV_ISSUER = 'soh-dev-issuer';

const devIssuerDir = (dataDir: string) => join(dataDir, 'dev-issuer');

export function devIssuerKeys(dataDir: string) {
  return loadOrCreateKeys(devIssuerDir(dataDir), 'dev-issuer');
}

/** Where the dev issuer's keys are, when a gateway in dev mode (or a test) has made them; else null. */
export function existingDevIssuer(dataDir: string): string | null {
  const dir = devIssuerDir(dataDir);
  return loadKeys(dir).length > 0 ? dir : null;
}

export function devIssuerJwks(dataDir: string): { keys: Record<string, unknown>[] } {
  return { keys: devIssuerKeys(dataDir).map((key) => key.publicJwk) };
}

export interface DevTokenRequest {
  org: string;
  roles: string[];
  purpose: string;
  caseRef?: string;
  sub?: string;
  ttlSeconds?: number;
  audience?: string;
  now?: number;
}

export async function signDevToken(dataDir: string, request: DevTokenRequest): Promise<string> {
  const [key] = devIssuerKeys(dataDir);
  const now = Math.floor((request.now ?? Date.now()) / 1000);
  return new SignJWT({
    org: request.org,
    roles: request.roles,
    purpose: request.purpose,
    ...(request.caseRef ? { case_ref: request.caseRef } : {}),
  })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key!.kid })
    .setIssuer(DEV_ISSUER)
    .setAudience(request.audience ?? 'soh-gateway')
    .setSubject(request.sub ?? `dev-${request.org}-${request.roles[0] ?? 'user'}`)
    .setIssuedAt(now)
    .setExpirationTime(now + (request.ttlSeconds ?? 900))
    .setJti(randomUUID())
    .sign(key!.privateKey);
}
