import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Clock } from '../lib/clock.ts';
import { sohError } from '../lib/errors.ts';
import type { GatewayRequestState } from './request-state.ts';

export interface BucketLimit {
  /** Requests allowed at once (the bucket's size). */
  burst: number;
  /** Requests the bucket regains per minute. */
  perMinute: number;
}

export interface RateLimits {
  perCaller: BucketLimit;
  /** How often one subject may be checked by Veilig Thuis (DESIGN §8). */
  perSubject: BucketLimit;
  /**
   * How often one caller may ask whether one subject's bans are violated at a location. Each
   * answer says inside or outside a ban's area: enough of them, at points the caller picks, would
   * draw the area whose centre (often the protected person's home) police may not see (DESIGN §6).
   */
  locationChecks: BucketLimit;
}

export const DEFAULT_RATE_LIMITS: RateLimits = {
  perCaller: { burst: 200, perMinute: 3_000 },
  perSubject: { burst: 30, perMinute: 30 },
  // Ten checks of one person at once, then one every two minutes: an encounter needs a few, while
  // drawing an area takes dozens (about 45 found a 5 km circle to a few metres).
  locationChecks: { burst: 10, perMinute: 0.5 },
};

const SWEEP_INTERVAL_MS = 60_000;

/** Where a limit is counted: in this process (TokenBuckets) or shared by every replica (SharedTokenBuckets). */
export interface RateLimiter {
  /**
   * Takes one request for each key (a key named twice takes two), all or none: null when allowed,
   * otherwise the whole seconds until all would be, and nothing is taken.
   */
  takeAll(keys: readonly string[]): number | null | Promise<number | null>;
}

/** How many requests each key takes: one per time it is named. */
export function requestsPerKey(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/**
 * Token buckets by key, in memory: each key may take `burst` requests at once and regains
 * `perMinute` a minute. Buckets that have refilled are dropped, so only keys seen within the
 * last refill time are held. Per gateway replica: N replicas allow N times the limit, unless the
 * replicas share their buckets through Redis (./shared-rate-limits.ts).
 */
export class TokenBuckets implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep: number;

  constructor(
    private readonly limit: BucketLimit,
    private readonly clock: Clock,
  ) {
    this.lastSweep = clock.now();
  }

  /** Takes one request for `key`: null when allowed, otherwise the whole seconds until it would be. */
  take(key: string): number | null {
    return this.takeAll([key]);
  }

  takeAll(keys: readonly string[]): number | null {
    const now = this.clock.now();
    // Also after a clock stepped back, which would otherwise hold the sweep off for the step.
    if (now - this.lastSweep > SWEEP_INTERVAL_MS || now < this.lastSweep) this.sweep(now);
    const wanted = requestsPerKey(keys);
    let waitSeconds = 0;
    for (const [key, count] of wanted) {
      // More at once than the bucket holds can never fit: refused, with the time a full bucket takes.
      if (count > this.limit.burst) return Math.ceil((this.limit.burst * 60) / this.limit.perMinute);
      const missing = count - this.tokensAt(key, now);
      // (The epsilon keeps float dust from rounding a whole second up to the next.)
      if (missing > 0) waitSeconds = Math.max(waitSeconds, Math.max(1, Math.ceil((missing * 60) / this.limit.perMinute - 1e-9)));
    }
    if (waitSeconds > 0) return waitSeconds;
    for (const [key, count] of wanted) this.buckets.set(key, { tokens: this.tokensAt(key, now) - count, at: now });
    return null;
  }

  private tokensAt(key: string, now: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.limit.burst;
    // A clock stepped back leaves `at` ahead of now: time counts again from now, not from a moment
    // still to come (the bucket would not refill until then).
    if (bucket.at > now) bucket.at = now;
    return Math.min(this.limit.burst, bucket.tokens + ((now - bucket.at) / 60_000) * this.limit.perMinute);
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const key of this.buckets.keys()) if (this.tokensAt(key, now) >= this.limit.burst) this.buckets.delete(key);
  }
}

export function rateLimited(who: string, retryAfterSeconds: number) {
  return sohError('RATE_LIMITED', `Too many requests ${who}; retry after ${retryAfterSeconds} s.`, {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });
}

/**
 * RATE_LIMITED next to data: the location checks of one subject ran out, so the bans were answered
 * without `violatedAt`. The answer is partial, so 200, as with PARTNER_UNAVAILABLE, not the 429
 * of a request refused whole.
 */
export function locationLeftOut(retryAfterSeconds: number) {
  return new GraphQLError(`Location checks of this subject are limited: violatedAt is left out; ask again with a location in ${retryAfterSeconds} s.`, {
    extensions: { code: 'RATE_LIMITED', retryAfter: retryAfterSeconds, http: { status: 200 } },
  });
}

/** The per-caller limit (DESIGN §8): one bucket per authenticated caller (issuer and subject). */
export function useCallerRateLimit(options: { states: WeakMap<Request, GatewayRequestState>; buckets: RateLimiter }): Plugin {
  return {
    onRequestParse({ request }) {
      const state = options.states.get(request)!;
      return afterTaking(options.buckets.takeAll([`${state.caller!.iss} ${state.caller!.sub}`]), (retryAfter) => {
        if (retryAfter === null) return;
        state.denial = { code: 'RATE_LIMITED', rule: 'per-caller rate limit' };
        throw rateLimited('from this caller', retryAfter);
      });
    },
  };
}

/** Goes on with a limiter's answer: at once from buckets in memory, after the round trip from shared ones. */
export function afterTaking<T>(taken: number | null | Promise<number | null>, next: (retryAfter: number | null) => T): T | Promise<T> {
  return taken instanceof Promise ? taken.then(next) : next(taken);
}
