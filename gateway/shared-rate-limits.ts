import { createClient } from '@redis/client';
import type { Clock } from '../lib/clock.ts';
import { type BucketLimit, type RateLimiter, TokenBuckets } from './rate-limits.ts';

/**
 * The token-bucket arithmetic of TokenBuckets, done inside Redis for all of one request's keys at
 * once (all or none), on Redis's clock, so that every gateway replica draws from the same buckets.
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
  if bucket[1] then tokens = math.min(burst, tonumber(bucket[1]) + (now - tonumber(bucket[2])) / 60000 * perMinute) end
  levels[i] = tokens
  local missing = count - tokens
  if missing > 0 then wait = math.max(wait, math.max(1, math.ceil(missing * 60 / perMinute - 1e-9))) end
end
if wait > 0 then return wait end
local ttl = math.ceil(burst / perMinute * 60000)
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'tokens', tostring(levels[i] - tonumber(ARGV[2 + i])), 'at', now)
  redis.call('PEXPIRE', key, ttl)
end
return 0
`;

/** Longer than a loopback or data-centre round trip; short enough that a stalled Redis never stalls a ban check. */
const COMMAND_TIMEOUT_MS = 100;

/** What the limits need of a Redis client. */
export interface RedisConnection {
  sendCommand<T>(args: readonly string[], options?: { abortSignal?: AbortSignal }): Promise<T>;
  /** Closes the connection, dropping what is in flight: a limit decision is never worth waiting for at shutdown. */
  destroy(): void;
}

/**
 * One Redis connection for a gateway's rate limits. It never holds start-up or a request up: it
 * connects in the background, commands fail at once while it is away (no offline queue), and it
 * keeps reconnecting. `onState` hears when Redis goes away and comes back.
 */
export function connectRateLimitStore(url: string, onState: (up: boolean, reason?: string) => void): RedisConnection {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 1_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
  });
  client.on('error', (error: Error) => onState(false, error.message));
  client.on('ready', () => onState(true));
  client.connect().catch(() => {});
  return client;
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
    private readonly redis: RedisConnection,
    private readonly limit: BucketLimit,
    private readonly keyPrefix: string,
    clock: Clock,
  ) {
    this.local = new TokenBuckets(limit, clock);
  }

  async takeAll(keys: readonly string[]): Promise<number | null> {
    if (keys.length === 0) return null;
    const counts = new Map<string, number>();
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
    const args = ['EVAL', TAKE_SCRIPT, String(counts.size), ...[...counts.keys()].map((key) => this.keyPrefix + key), String(this.limit.burst), String(this.limit.perMinute), ...[...counts.values()].map(String)];
    try {
      const wait = await this.redis.sendCommand<number>(args, { abortSignal: AbortSignal.timeout(COMMAND_TIMEOUT_MS) });
      return wait === 0 ? null : wait;
    } catch {
      return this.local.takeAll(keys);
    }
  }
}
