import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { z } from 'zod';
import { signDevToken } from '../lib/dev-issuer.ts';
import { projectFile } from '../lib/project.ts';
import { CALLERS } from './callers.ts';
import { type Subject, failedAnswer, requestBody } from './workload.ts';

/**
 * The load generator, in its own process so that it never shares an event loop with a target:
 * sends the workload at fixed concurrency (autocannon) or at a fixed arrival rate (below), every
 * request with a random subject and, where a caller token applies, its own token; prints one
 * JSON line with throughput, exact latency percentiles and error counts. Requests and req/s count
 * successful answers only (./workload.ts, failedAnswer); each failed request counts once, as an error.
 */
type Run = Promise<unknown> & { on(event: 'response' | 'reqError', listener: (...args: never[]) => void): void };
const autocannon = createRequire(projectFile('bench/peers/package.json'))('autocannon') as (options: object) => Run;

const options = z
  .object({
    url: z.url(),
    workload: z.enum(['person', 'hitCheck', 'activeBans']),
    subjectsFile: z.string(),
    dataDir: z.string(),
    connections: z.number().int().positive(),
    seconds: z.number().positive(),
    /** Load sent before the measured window opens, so that a target is measured at work, not waking up. */
    leadInSeconds: z.number().nonnegative().default(0),
    rate: z.number().positive().optional(),
    callerTokens: z.boolean(),
  })
  .parse(JSON.parse(process.argv[2] ?? '{}'));

const subjects = JSON.parse(readFileSync(options.subjectsFile, 'utf8')) as Subject[];
const at = new Date().toISOString();
const bodies = subjects.map((subject) => requestBody(options.workload, subject, at));
const tokens: string[] = [];
if (options.callerTokens && options.workload !== 'person') {
  const caller = CALLERS[options.workload];
  const count = Math.min(20_000, Math.ceil((options.leadInSeconds + options.seconds) * (options.rate ?? 2_000)));
  for (let i = 0; i < count; i++) tokens.push(await signDevToken(options.dataDir, { ...caller, sub: `bench-${i % 500}`, ttlSeconds: 900 }));
}

function percentiles(latencies: number[]) {
  latencies.sort((a, b) => a - b);
  const at = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! : NaN);
  return { p50: at(50), p95: at(95), p99: at(99) };
}

function request(index: number): { headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (tokens.length) headers['authorization'] = `Bearer ${tokens[index % tokens.length]}`;
  return { headers, body: bodies[Math.floor(Math.random() * bodies.length)]! };
}

/** Tells the benchmark that the measured window opens now (it starts counting CPU time here). */
function announceMeasuring(): void {
  console.log(JSON.stringify({ phase: 'measuring' }));
}

/**
 * Fixed concurrency (closed loop): autocannon keeps `connections` requests in flight; responses
 * count from the end of the lead-in on. Latency percentiles are those of the successful answers
 * (autocannon gives a timed-out request no latency; it counts as an error).
 */
async function closedLoop() {
  let sent = 0;
  let failed = 0;
  let measuring = false;
  // autocannon calls a request's onResponse and then, synchronously, emits 'response' with the
  // latency of the same answer: the first tells the second whether that answer failed.
  let lastFailed = false;
  const latencies: number[] = [];
  let started = process.hrtime.bigint();
  setTimeout(() => {
    measuring = true;
    started = process.hrtime.bigint();
    announceMeasuring();
  }, options.leadInSeconds * 1_000);
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.leadInSeconds + options.seconds,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/graphql',
        setupRequest: (base: Record<string, unknown>) => ({ ...base, ...request(sent++) }),
        onResponse(status: number, body: string) {
          lastFailed = failedAnswer(status, body);
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
    if (!measuring) return;
    if (lastFailed) failed++;
    else latencies.push(responseTime);
  });
  // A timeout or connection error, once per request (autocannon's own error count also holds the lead-in's).
  instance.on('reqError', () => {
    if (measuring) failed++;
  });
  await instance;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { requests: latencies.length, rps: latencies.length / seconds, ...percentiles(latencies), errors: failed };
}

/**
 * Fixed arrival rate (open loop): request i is due at start + i / rate, whether or not earlier
 * ones have answered, and its latency counts from when it was due, so a slow target cannot slow
 * the arrivals down and hide its own queueing (autocannon's rate limit sends each second's
 * quota in a burst instead). The latency percentiles hold the successful answers and the
 * requests that got no answer at all (timeout, reset), these until they failed: under overload
 * they are the slowest, and without them p99 would be the lucky requests' p99. A failed answer
 * (401, errors) stays out: it comes fast and would make p99 look better. Requests and req/s count
 * successful answers only.
 */
async function openLoop(rate: number) {
  const pool = new Pool(options.url, { connections: options.connections, keepAliveTimeout: 30_000 });
  const intervalMs = 1_000 / rate;
  const leadIn = Math.round(options.leadInSeconds * rate);
  const total = leadIn + Math.round(options.seconds * rate);
  const latencies: number[] = [];
  let succeeded = 0;
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  const measuredFrom = start + leadIn * intervalMs;
  setTimeout(announceMeasuring, Math.max(0, measuredFrom - performance.now()));
  const send = (index: number, due: number) => {
    const { headers, body } = request(index);
    // Only requests due inside the measured window count.
    const measured = index >= leadIn;
    const done = pool
      .request({ method: 'POST', path: '/graphql', headers, body, headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (response) => (failedAnswer(response.statusCode, await response.body.text()) ? 'failed' : 'answered'))
      .catch(() => 'unanswered' as const)
      .then((outcome) => {
        if (!measured) return;
        if (outcome !== 'failed') latencies.push(performance.now() - due);
        if (outcome === 'answered') succeeded++;
        else failed++;
      })
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };
  for (let index = 0; index < total; ) {
    const now = performance.now();
    for (; index < total && start + index * intervalMs <= now; index++) send(index, start + index * intervalMs);
    if (index < total) await new Promise((resolve) => setTimeout(resolve, Math.max(0, start + index * intervalMs - performance.now())));
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - measuredFrom) / 1_000;
  await pool.close();
  return { requests: succeeded, rps: succeeded / seconds, ...percentiles(latencies), errors: failed };
}

console.log(JSON.stringify(options.rate ? await openLoop(options.rate) : await closedLoop()));
