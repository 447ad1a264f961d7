import { createHash } from 'node:crypto';
import { createClient } from '@redis/client';
import type { Clock } from '../lib/clock.ts';
import { CircuitBreaker } from './federation/breaker.ts';
import { type BucketLimit, type RateLimiter, TokenBuckets, requestsPerKey } from './rate-limits.ts';

/**
 * The token-bucket arithmetic of TokenBuckets, done inside Redis for all keys of one check at once
 * (all or none), on Redis's clock, so that every gateway replica draws from the same buckets.
 * KEYS: the buckets; ARGV: burst, perMinute, then how many requests each key takes. Returns 0
 * when allowed, else the whole seconds to wait. A bucket expires once it would have refilled.
 */
const TAKE_SCRIPT = `
local burst = tonumber(ARGV[1])
local perMinute = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(ARGV[2 + i])
  if count > burst then return math.ceil(burst * 60 / perMinute) end
  local bucket = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = burst
  if bucket[1] then
    local at = tonumber(bucket[2])
    if at > now then
      at = now
      redis.call('HSET', key, 'at', now)
    end
    tokens = math.min(burst, tonumber(bucket[1]) + (now - at) / 60000 * perMinute)
  end
  levels[i] = tokens
  local missing = count - tokens
  if missing > 0 then wait = math.max(wait, math.max(1, math.ceil(missing * 60 / perMinute - 1e-9))) end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local left = levels[i] - tonumber(ARGV[2 + i])
  redis.call('HSET', key, 'tokens', tostring(left), 'at', now)
  -- Gone once it would be full again: a subject reference is kept no longer than its limit needs.
  redis.call('PEXPIRE', key, math.max(1, math.ceil((burst - left) / perMinute * 60000)))
end
return 0
`;
const TAKE_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex');

/** Longer than a loopback or data-centre round trip; short enough that a stalled Redis never stalls a ban check. */
const ANSWER_WITHIN_MS = 100;
/** After a failure, Redis is left alone this long (requests count locally at once), then tried again. */
const RETRY_AFTER_MS = 1_000;
/** Unanswered commands in a row after which the connection is presumed dead (a stalled peer never closes it) and replaced. */
const REPLACE_AFTER_TIMEOUTS = 3;

/** What the store needs of a Redis client. */
interface RedisClient {
  sendCommand(args: readonly string[]): Promise<unknown>;
  destroy(): void;
}

class RedisUnavailable extends Error {
  override name = 'RedisUnavailable';
}

/**
 * A gateway's connection to the Redis its rate limits share. It holds start-up up for a second at
 * most (firstConnection) and a request never: a command fails at once while the connection is away (no
 * offline queue) and after ANSWER_WITHIN_MS when Redis does not answer; after a failure Redis is
 * not asked for RETRY_AFTER_MS (a circuit breaker). `report` hears, once each, when the store
 * fails and when it answers again.
 */
export class RateLimitStore {
  private client: RedisClient;
  private readonly breaker: CircuitBreaker;
  private timeoutsInARow = 0;
  private up: boolean | null = null;
  /** Settles when the first connection is ready or has failed, or after a second: what start-up may wait for. */
  readonly firstConnection: Promise<void>;

  constructor(
    private readonly url: string,
    clock: Clock,
    private readonly report: (up: boolean, reason?: string) => void,
  ) {
    this.breaker = new CircuitBreaker(clock, 1, RETRY_AFTER_MS);
    let settle!: () => void;
    this.firstConnection = new Promise<void>((resolve) => (settle = resolve));
    this.client = this.connect(settle);
    setTimeout(settle, 1_000).unref();
  }

  private connect(onSettled: () => void = () => {}): RedisClient {
    const client = createClient({
      url: this.url,
      disableOfflineQueue: true,
      socket: { connectTimeout: 1_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
    });
    client.on('error', (error: Error) => {
      this.setUp(false, error.message);
      onSettled();
    });
    client.on('ready', onSettled);
    client.connect().catch(() => {});
    return client;
  }

  private setUp(up: boolean, reason?: string): void {
    if (up === this.up) return;
    this.up = up;
    this.report(up, reason);
  }

  /** Runs TAKE_SCRIPT; rejects with RedisUnavailable on anything but a whole number of seconds. */
  async take(keys: readonly string[], args: readonly string[]): Promise<number> {
    const permit = this.breaker.allow();
    if (!permit) throw new RedisUnavailable('circuit open');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisUnavailable(`no answer within ${ANSWER_WITHIN_MS} ms`)), ANSWER_WITHIN_MS);
    });
    try {
      const wait = await Promise.race([this.evaluate(keys, args), timeout]);
      if (typeof wait !== 'number' || !Number.isInteger(wait) || wait < 0) throw new RedisUnavailable(`unexpected answer ${typeof wait}`);
      this.breaker.success(permit);
      this.timeoutsInARow = 0;
      this.setUp(true);
      return wait;
    } catch (error) {
      this.breaker.failure(permit);
      this.setUp(false, (error as Error).message);
      if (error instanceof RedisUnavailable && error.message.startsWith('no answer') && ++this.timeoutsInARow >= REPLACE_AFTER_TIMEOUTS) {
        this.timeoutsInARow = 0;
        this.client.destroy();
        this.client = this.connect();
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** EVALSHA, and the script itself only when Redis does not hold it yet (first use, or after a restart). */
  private async evaluate(keys: readonly string[], args: readonly string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await this.client.sendCommand(['EVALSHA', TAKE_SHA, ...tail]);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return this.client.sendCommand(['EVAL', TAKE_SCRIPT, ...tail]);
    }
  }

  /** Closes the connection, dropping what is in flight: a limit decision is never worth waiting for at shutdown. */
  close(): void {
    this.client.destroy();
  }
}

/**
 * Token buckets shared by every gateway replica through Redis (TAKE_SCRIPT). While Redis cannot
 * answer, each replica counts in its own buckets (TokenBuckets), as a single gateway would: a rate
 * limit must never be why an officer does not learn of a ban. Keys are a caller's issuer and
 * subject, or a subject reference, never a BSN.
 */
export class SharedTokenBuckets implements RateLimiter {
  private readonly local: TokenBuckets;

  constructor(
    private readonly store: RateLimitStore,
    private readonly limit: BucketLimit,
    private readonly keyPrefix: string,
    clock: Clock,
  ) {
    this.local = new TokenBuckets(limit, clock);
  }

  async takeAll(keys: readonly string[]): Promise<number | null> {
    if (keys.length === 0) return null;
    const counts = requestsPerKey(keys);
    try {
      const wait = await this.store.take(
        [...counts.keys()].map((key) => this.keyPrefix + key),
        [String(this.limit.burst), String(this.limit.perMinute), ...[...counts.values()].map(String)],
      );
      return wait === 0 ? null : wait;
    } catch {
      return this.local.takeAll(keys);
    }
  }
}
