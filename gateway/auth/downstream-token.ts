import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../../lib/clock.ts';
import { GATEWAY_ISSUER } from '../../lib/keys.ts';
import type { Caller } from './caller-token.ts';
import type { GatewayKeys } from './gateway-keys.ts';

const LIFETIME_SECONDS = 60;
/**
 * A minted token is reused for the same caller identity and node while it has more than this
 * much life left: far more than a request's deadline, so that a node never sees it expired, and
 * small enough that one signature serves three quarters of the token's life.
 */
const REUSE_MARGIN_SECONDS = 15;

/**
 * Mints the short-lived token a node requires (DESIGN §4): iss soh-gateway, aud = node id,
 * the caller's sub, org, roles, purpose and case_ref, and act { sub: soh-gateway }.
 */
export class DownstreamTokens {
  /** Holds the signing promise, so that concurrent requests of one caller share one signature. */
  private readonly cache = new Map<string, { token: Promise<string>; exp: number }>();

  constructor(
    private readonly keys: GatewayKeys,
    private readonly clock: Clock,
  ) {}

  mint(nodeId: string, caller: Caller): Promise<string> {
    const now = Math.floor(this.clock.now() / 1000);
    const cacheKey = JSON.stringify([nodeId, caller.sub, caller.org, caller.roles, caller.purpose, caller.caseRef]);
    const cached = this.cache.get(cacheKey);
    if (cached && cached.exp - now > REUSE_MARGIN_SECONDS) return cached.token;
    const exp = now + LIFETIME_SECONDS;
    const token = this.sign(nodeId, caller, now, exp);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(cacheKey, { token, exp });
    // A failed signature is not kept: the next request tries again.
    token.catch(() => {
      if (this.cache.get(cacheKey)?.token === token) this.cache.delete(cacheKey);
    });
    return token;
  }

  private sign(nodeId: string, caller: Caller, now: number, exp: number): Promise<string> {
    const key = this.keys.signing;
    return new SignJWT({
      org: caller.org,
      roles: caller.roles,
      purpose: caller.purpose,
      ...(caller.caseRef ? { case_ref: caller.caseRef } : {}),
      act: { sub: GATEWAY_ISSUER },
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })
      .setIssuer(GATEWAY_ISSUER)
      .setAudience(nodeId)
      .setSubject(caller.sub)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }
}
