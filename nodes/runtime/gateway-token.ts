import { type JWTVerifyGetKey, createLocalJWKSet, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Clock } from '../../lib/clock.ts';
import { issuerUnavailable, unauthenticated } from '../../lib/errors.ts';
import { KeySetUnavailable, remoteKeySet } from '../../lib/key-set-fetch.ts';
import { GATEWAY_ISSUER } from '../../lib/keys.ts';
import { RememberedTokens } from '../../lib/remembered-tokens.ts';

/** The caller's identity as the gateway vouches for it in the downstream token (DESIGN §4). */
export const downstreamClaims = z.object({
  iss: z.literal(GATEWAY_ISSUER),
  sub: z.string().min(1),
  org: z.string().min(1),
  roles: z.array(z.string()),
  purpose: z.string().min(1),
  case_ref: z.string().optional(),
  jti: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
  act: z.object({ sub: z.literal(GATEWAY_ISSUER) }),
});
export type DownstreamClaims = z.infer<typeof downstreamClaims>;

const MAX_LIFETIME_SECONDS = 60;
const CACHE_LIMIT = 10_000;

export function gatewayKeys(source: { jwksUrl?: string; jwks?: { keys: object[] } }): JWTVerifyGetKey {
  if (source.jwks) return createLocalJWKSet(source.jwks as never);
  if (!source.jwksUrl) throw new Error('either a gateway JWKS URL or a JWKS document is required');
  // A rotated-in gateway key is fetched within 5 s of the first token it signs.
  return remoteKeySet(new URL(source.jwksUrl), { timeoutMs: 5_000, cooldownMs: 5_000 });
}

/**
 * Verifies the token the gateway minted for this node: signature from the gateway's JWKS,
 * iss soh-gateway, aud = this node, a lifetime of at most 60 s. The gateway reuses a token for
 * the same caller for a few seconds, so verified tokens are remembered until they expire.
 */
export function gatewayTokenVerifier(options: { nodeId: string; keys: JWTVerifyGetKey; clock: Clock }) {
  const verified = new RememberedTokens<DownstreamClaims>(CACHE_LIMIT);
  return async (authorization: string | null): Promise<DownstreamClaims> => {
    const match = authorization ? /^Bearer ([A-Za-z0-9_.-]+)$/.exec(authorization) : null;
    if (!match) throw unauthenticated('a gateway-minted bearer token is required');
    const token = match[1]!;
    const nowSeconds = Math.floor(options.clock.now() / 1000);
    const cached = verified.get(token, (claims) => claims.exp > nowSeconds);
    if (cached) return cached;
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, options.keys, {
        issuer: GATEWAY_ISSUER,
        audience: options.nodeId,
        algorithms: ['EdDSA'],
        typ: 'at+jwt',
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
        currentDate: new Date(options.clock.now()),
        clockTolerance: 5,
        maxTokenAge: MAX_LIFETIME_SECONDS + 5,
      }));
    } catch (error) {
      // The node cannot tell a good token from a bad one while the gateway's keys cannot be had:
      // not the token's fault, and said so, so that operators look at the key endpoint.
      if (error instanceof KeySetUnavailable) throw issuerUnavailable();
      throw unauthenticated('the gateway token does not verify for this node');
    }
    const claims = downstreamClaims.safeParse(payload);
    if (!claims.success || claims.data.exp - claims.data.iat > MAX_LIFETIME_SECONDS) {
      throw unauthenticated('the gateway token lacks required claims or lives too long');
    }
    verified.set(token, claims.data);
    return claims.data;
  };
}
