import {
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
} from 'jose';
import { z } from 'zod';
import type { Clock } from '../../lib/clock.ts';
import { issuerUnavailable, unauthenticated } from '../../lib/errors.ts';
import { KeySetUnavailable, remoteKeySet } from '../../lib/key-set-fetch.ts';
import { readJwksFile } from '../../lib/keys.ts';
import { RememberedTokens } from '../../lib/remembered-tokens.ts';
import { orgMatches } from '../../lib/policy/load.ts';

/** Who is asking, as their organisation's identity provider vouches for it (DESIGN §4). */
export interface Caller {
  iss: string;
  sub: string;
  org: string;
  roles: readonly string[];
  purpose: string;
  caseRef: string | null;
  /**
   * Set when the token carries a case_ref that is not a string matching the configured pattern;
   * caseRef is then null, so that no audit record or node token holds what a caller wrote there (a
   * BSN or an address, say). The purpose gate refuses it (FORBIDDEN) where a case_ref is required
   * (DESIGN §8).
   */
  caseRefMalformed?: true;
  jti: string;
}

export interface TrustedIssuer {
  issuer: string;
  /** Organisation ids or patterns (`veilig-thuis-*`, `*`) this issuer may speak for. */
  orgs: string[];
  keys: JWTVerifyGetKey;
  /** Accept `typ: JWT` besides `at+jwt` for an issuer that cannot set the RFC 9068 type. */
  acceptJwtTyp: boolean;
}

export interface CallerTokenPolicy {
  audience: string;
  maxTokenBytes: number;
  clockToleranceSeconds: number;
  maxTokenAgeSeconds: number;
  /** What a well-formed case_ref looks like (GatewayConfig.caseRefPattern). */
  caseRefPattern: string;
}

/** RFC 8725 §3.1: an explicit allow-list; never `none`, never HMAC (a public key must not become a shared secret). */
export const ALLOWED_ALGORITHMS = ['ES256', 'EdDSA', 'PS256', 'RS256'];

const MAX_CASE_REF_LENGTH = 256;

/**
 * Text an audit record keeps and a privacy officer reads and searches: no control, format or
 * line-separator characters (a right-to-left override shows one account name as another, a
 * zero-width space makes an exact search by account miss), and no lone surrogate (SQLite keeps it
 * in a search column as U+FFFD, which `soh audit verify` would rightly call an edited column).
 */
const printable = (max: number) => z.string().min(1).max(max).regex(/^[^\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]+$/u, 'holds a control or format character');

const claims = z.object({
  sub: printable(256),
  // `unknown` is how an access record names the organisation of a request no token vouched for:
  // an officer of an organisation by that name would see them all.
  org: z
    .string()
    .regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'org must be an organisation id')
    .refine((org) => org !== 'unknown', 'org "unknown" is kept for requests without a caller'),
  roles: z.array(printable(128)).min(1).max(32),
  purpose: printable(128),
  // Read as it comes: a malformed case_ref is the purpose gate's refusal (403), not the token's (401).
  case_ref: z.unknown().optional(),
  jti: printable(256),
  exp: z.number(),
  iat: z.number(),
});

/** An issuer's keys, from its file or its URL; a fetch takes at most `timeoutMs` (the request deadline). */
export function issuerKeys(source: { issuer: string; jwksUrl?: string; jwksFile?: string }, timeoutMs: number): JWTVerifyGetKey {
  if (source.jwksFile) return createLocalJWKSet(readJwksFile(source.jwksFile, `the jwksFile of issuer ${source.issuer}`) as never);
  if (source.jwksUrl) return remoteKeySet(new URL(source.jwksUrl), { timeoutMs });
  throw new Error('an issuer needs jwksUrl or jwksFile');
}

function typAllowed(typ: unknown, issuer: TrustedIssuer): boolean {
  if (typeof typ !== 'string') return false;
  // RFC 9068 §2.1: "at+jwt"; media types compare case-insensitively and may carry "application/".
  const normalised = typ.toLowerCase().replace(/^application\//, '');
  return normalised === 'at+jwt' || (issuer.acceptJwtTyp && normalised === 'jwt');
}

/**
 * A verified token is remembered for at most this long, even when it lives longer, so that it
 * meets its issuer's current key set again at least this often (a withdrawn key stops admitting it).
 */
export const REMEMBER_SECONDS = 300;
// Typical tokens of about 1 KiB make 4 MiB; 8 KiB tokens (the cap), at most 32 MiB. A token that fell out is simply verified again.
const REMEMBERED_LIMIT = 4_000;

/** A verified token's caller and the times that still decide whether the token holds. */
interface Remembered {
  caller: Caller;
  exp: number;
  iat: number;
  forgetAt: number;
}

/**
 * Verifies a caller's bearer token: size cap, algorithm and type allow-lists, issuer, keys, claims.
 * A caller's system sends the same token with every request of its session, so a token that
 * verified is remembered (by its exact text, signature included) until it expires, grows older
 * than the maximum token age, or REMEMBER_SECONDS pass; only the time checks run again.
 */
export function callerTokenVerifier(issuers: readonly TrustedIssuer[], policy: CallerTokenPolicy, clock: Clock) {
  const byIssuer = new Map(issuers.map((issuer) => [issuer.issuer, issuer]));
  const remembered = new RememberedTokens<Remembered>(REMEMBERED_LIMIT);
  const caseRefPattern = new RegExp(policy.caseRefPattern);

  return async (authorization: string | null): Promise<Caller> => {
    if (!authorization) throw unauthenticated('no bearer token');
    const match = /^Bearer[ ]+([^ ]+)$/i.exec(authorization);
    if (!match) throw unauthenticated('the Authorization header is not "Bearer <token>"');
    const token = match[1]!;
    if (token.length > policy.maxTokenBytes) throw unauthenticated('the token is larger than allowed');
    const now = Math.floor(clock.now() / 1000);
    // One that no longer holds is verified again below, so that the refusal names the reason.
    const known = remembered.get(
      token,
      (entry) => now < entry.forgetAt && now < entry.exp + policy.clockToleranceSeconds && now - entry.iat <= policy.maxTokenAgeSeconds + policy.clockToleranceSeconds,
    );
    if (known) return known.caller;
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      throw unauthenticated('the token is not a compact JWS');
    }
    if (typeof header.alg !== 'string' || !ALLOWED_ALGORITHMS.includes(header.alg)) {
      throw unauthenticated('the token algorithm is not allowed');
    }
    const issuer = typeof unverified.iss === 'string' ? byIssuer.get(unverified.iss) : undefined;
    if (!issuer) throw unauthenticated('the token issuer is not trusted');
    if (!typAllowed(header.typ, issuer)) throw unauthenticated('the token type must be at+jwt');
    let payload: unknown;
    try {
      ({ payload } = await verifyWithKeySet(token, issuer.keys, {
        issuer: issuer.issuer,
        audience: policy.audience,
        algorithms: ALLOWED_ALGORITHMS,
        clockTolerance: policy.clockToleranceSeconds,
        maxTokenAge: policy.maxTokenAgeSeconds,
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
        currentDate: new Date(clock.now()),
      }));
    } catch (error) {
      if (error instanceof KeySetUnavailable) throw issuerUnavailable();
      throw unauthenticated(verificationReason(error));
    }
    const parsed = claims.safeParse(payload);
    if (!parsed.success) throw unauthenticated(`the token lacks a valid ${parsed.error.issues[0]?.path.join('.') ?? 'claim'} claim`);
    const { sub, org, roles, purpose, case_ref, jti, exp, iat } = parsed.data;
    if (!issuer.orgs.some((pattern) => orgMatches(pattern, org))) {
      throw unauthenticated('the token issuer may not speak for this organisation');
    }
    // Shared by every request that presents this token: nobody may change it.
    const caseRef = typeof case_ref === 'string' && case_ref.length <= MAX_CASE_REF_LENGTH && caseRefPattern.test(case_ref) ? case_ref : null;
    const caseRefMalformed = case_ref !== undefined && caseRef === null ? { caseRefMalformed: true as const } : {};
    const caller: Caller = Object.freeze({ iss: issuer.issuer, sub, org, roles: Object.freeze([...roles]), purpose, caseRef, ...caseRefMalformed, jti });
    remembered.set(token, { caller, exp, iat, forgetAt: now + REMEMBER_SECONDS });
    return caller;
  };
}

/**
 * jwtVerify against an issuer's key set, trying each key that fits when the token names none
 * (`kid` is optional, RFC 7515 §4.1.4) and the set holds more than one of its type, as it does
 * while an identity provider publishes its next key: jose hands the candidates back instead.
 */
async function verifyWithKeySet(token: string, keys: JWTVerifyGetKey, options: JWTVerifyOptions) {
  try {
    return await jwtVerify(token, keys, options);
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error) {
      try {
        return await jwtVerify(token, key, options);
      } catch (tried) {
        if (!(tried instanceof errors.JWSSignatureVerificationFailed)) throw tried;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/**
 * The issuer's keys cannot be had: nothing is wrong with the token, so the caller is not told it
 * is (401 makes a client throw its token away); 503 and Retry-After say to try again shortly.
 */
function verificationReason(error: unknown): string {
  const code = (error as { code?: string }).code;
  const claim = (error as { claim?: string }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'the token has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return claim ? `the token's ${claim} claim is not acceptable` : 'a token claim is not acceptable';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'the token signature does not verify';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no key of the issuer matches the token';
    default:
      return 'the token does not verify';
  }
}
