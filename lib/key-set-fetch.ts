import { type JWTVerifyGetKey, createRemoteJWKSet, customFetch, errors } from 'jose';
import { request } from 'undici';

/**
 * How a remote JWKS is fetched (jose's `customFetch`): through undici's `request`, not `fetch()`.
 * `fetch()` refuses the WHATWG "bad ports" (6000, 6665–6669, 10080, …): a gateway listening on one
 * of them left every node unable to fetch its keys, and every partner UNAVAILABLE. jose reads only
 * the status and the JSON body; redirects are not followed (jose asks for `redirect: manual`), so
 * a 3xx is a failed fetch, as with jose's own fetch.
 */
async function fetchKeySet(url: string, init: { headers: Headers; signal: AbortSignal }): Promise<Response> {
  const { statusCode, body } = await request(url, { method: 'GET', headers: Object.fromEntries(init.headers), signal: init.signal });
  const text = await body.text();
  // A Response with one of these statuses may carry no body at all.
  return new Response([204, 205, 304].includes(statusCode) ? null : text, { status: statusCode });
}

export interface RemoteKeySetOptions {
  /** How long one fetch may take. */
  timeoutMs: number;
  /** Keys older than this are fetched again, in the background while they still serve. */
  refreshMs?: number;
  /** Keys older than this no longer serve: a token then waits for a fetch, and fails if it fails. */
  maxStaleMs?: number;
  /** After a fetch, how long a token with an unknown `kid` waits before it may cause another. */
  cooldownMs?: number;
}

const REFRESH_MS = 10 * 60_000;
const MAX_STALE_MS = 24 * 60 * 60_000;
const COOLDOWN_MS = 30_000;
/**
 * With no keys that may serve (none fetched yet, or too old), a fetch that failed is not tried
 * again for this long: a token anyone can send must not turn into a fetch as soon as the last one
 * failed, hundreds a second against an endpoint that fails fast.
 */
const RETRY_AFTER_FAILURE_MS = 1_000;

/** No usable key set: it has never been fetched (or is too old), and fetching it failed now. */
export class KeySetUnavailable extends Error {
  override name = 'KeySetUnavailable';
  constructor(readonly url: string) {
    super(`the key set at ${url} could not be fetched`);
  }
}

/**
 * A remote key set that serves the keys it fetched last while it fetches them again. jose's own
 * resolver, once its cache is 10 minutes old, makes every token wait for the fetch and fails it
 * if the fetch fails: an identity provider whose key endpoint was down for 10 minutes shut out
 * every caller it had ever vouched for, though their keys were known. Here a set older than
 * `refreshMs` is fetched again in the background, and a failed fetch leaves the set in hand
 * serving until it is `maxStaleMs` old. A key the set does not hold (a rotation) is still fetched
 * at once, at most once per `cooldownMs`; a withdrawn key goes with the first fetch that succeeds.
 */
export function remoteKeySet(url: URL, options: RemoteKeySetOptions): JWTVerifyGetKey {
  const refreshMs = options.refreshMs ?? REFRESH_MS;
  const maxStaleMs = options.maxStaleMs ?? MAX_STALE_MS;
  const cooldownMs = options.cooldownMs ?? COOLDOWN_MS;
  // jose's cache never expires on its own, and jose never fetches by itself for an unknown kid:
  // its cool-down starts only after a fetch that succeeded, so while the endpoint failed every
  // made-up kid would cause a fetch. This wrapper decides when the keys are fetched again.
  const remote = createRemoteJWKSet(url, { timeoutDuration: options.timeoutMs, cooldownDuration: Infinity, cacheMaxAge: Infinity, [customFetch]: fetchKeySet });
  let fetchedAt = Number.NEGATIVE_INFINITY;
  /** The last fetch begun, whatever came of it. */
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let refreshing: Promise<void> | null = null;
  let failing = false;

  const fetchNow = (): Promise<void> => {
    if (refreshing) return refreshing;
    attemptedAt = Date.now();
    refreshing = remote
      .reload()
      .then(
        () => {
          fetchedAt = Date.now();
          failing = false;
        },
        (error: unknown) => {
          // Said once per outage, not once per token: the key endpoint's name only, never a token.
          if (!failing) console.error(`key set ${url.href} could not be fetched (${(error as Error).message}); the keys fetched before still serve while they are under ${maxStaleMs / 60_000} min old`);
          failing = true;
          throw new KeySetUnavailable(url.href);
        },
      )
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };

  return async (header, token) => {
    const age = Date.now() - fetchedAt;
    if (age > maxStaleMs) {
      if (failing && Date.now() - attemptedAt < RETRY_AFTER_FAILURE_MS) throw new KeySetUnavailable(url.href);
      await fetchNow();
    }
    else if (age > refreshMs) fetchNow().catch(() => {});
    try {
      return await remote(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw fetchFailed(error) ? new KeySetUnavailable(url.href) : error;
      // A kid the set does not hold (a rotation): fetched at once, at most once per cool-down,
      // failed or not. Within it, while the endpoint fails, the key cannot be had (503); after a
      // fetch that succeeded, the issuer has no such key (401).
      if (Date.now() - attemptedAt < cooldownMs) throw failing ? new KeySetUnavailable(url.href) : error;
      await fetchNow();
      return remote(header, token);
    }
  };
}

const FETCH_FAILURES = new Set(['ERR_JOSE_GENERIC', 'ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);

/** A failed fetch (network, status, timeout, not a key set), not a token its keys refuse. */
function fetchFailed(error: unknown): boolean {
  return !(error instanceof errors.JOSEError) || FETCH_FAILURES.has(error.code);
}
