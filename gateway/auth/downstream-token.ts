import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../lib/clock.ts';
import type { Caller } from './caller-token.ts';
import type { GatewayKeys } from './gateway-keys.ts';

const LIFETIME_SECONDS = 60;
/** A minted token is reused for the same caller identity and node while it has this much life left. */
const REUSE_MARGIN_SECONDS = 30;

/**
 * Mints the short-lived token a node requires (DESIGN §4): iss soh-gateway, aud = node id,
 * the caller's sub, org, roles, purpose and case_ref, and act { sub: soh-gateway }.
 */
export class DownstreamTokens {
  private readonly cache = new Map<string, { token: string; exp: number }>();

  constructor(
    private readonly keys: GatewayKeys,
    private readonly clock: Clock,
  ) {}

  async mint(nodeId: string, caller: Caller): Promise<string> {
    const now = Math.floor(this.clock.now() / 1000);
    const cacheKey = JSON.stringify([nodeId, caller.sub, caller.org, caller.roles, caller.purpose, caller.caseRef]);
    const cached = this.cache.get(cacheKey);
    if (cached && cached.exp - now > REUSE_MARGIN_SECONDS) return cached.token;
    const key = this.keys.signing;
    const exp = now + LIFETIME_SECONDS;
    const token = await new SignJWT({
      org: caller.org,
      roles: caller.roles,
      purpose: caller.purpose,
      ...(caller.caseRef ? { case_ref: caller.caseRef } : {}),
      act: { sub: 'soh-gateway' },
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })
      .setIssuer('soh-gateway')
      .setAudience(nodeId)
      .setSubject(caller.sub)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(key.privateKey);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(cacheKey, { token, exp });
    return token;
  }
}
