import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { signDevToken } from '../lib/dev-issuer.ts';
import { CALLERS } from './callers.ts';
import { type Subject, requestBody } from './workload.ts';

/**
 * The load generator, in its own process so that it never shares an event loop with a target:
 * sends the workload at fixed concurrency (or at a fixed arrival rate) with autocannon, every
 * request with a random subject and, where a caller token applies, its own token; prints one
 * JSON line with throughput, exact latency percentiles and error counts.
 */
type Run = Promise<{ errors: number; timeouts: number }> & { on(event: 'response', listener: (...args: never[]) => void): void };
const autocannon = createRequire(new URL('./peers/package.json', import.meta.url))('autocannon') as (options: object) => Run;

const options = z
  .object({
    url: z.url(),
    workload: z.enum(['person', 'hitCheck', 'activeBans']),
    subjectsFile: z.string(),
    dataDir: z.string(),
    connections: z.number().int().positive(),
    seconds: z.number().positive(),
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
  const count = Math.min(20_000, Math.ceil(options.seconds * (options.rate ?? 2_000)));
  for (let i = 0; i < count; i++) tokens.push(await signDevToken(options.dataDir, { ...caller, sub: `bench-${i % 500}`, ttlSeconds: 900 }));
}

let sent = 0;
let failed = 0;
const latencies: number[] = [];
const started = process.hrtime.bigint();
const instance = autocannon({
  url: options.url,
  connections: options.connections,
  duration: options.seconds,
  ...(options.rate ? { overallRate: options.rate } : {}),
  timeout: 10,
  requests: [
    {
      method: 'POST',
      path: '/graphql',
      setupRequest(request: Record<string, unknown>) {
        const index = sent++;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (tokens.length) headers['authorization'] = `Bearer ${tokens[index % tokens.length]}`;
        return { ...request, headers, body: bodies[Math.floor(Math.random() * bodies.length)] };
      },
      onResponse(status: number, body: string) {
        if (status !== 200 || body.includes('"errors"')) failed++;
      },
    },
  ],
});
instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTime: number) => latencies.push(responseTime));
const result = await instance;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;

latencies.sort((a, b) => a - b);
const percentile = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! : NaN);
console.log(
  JSON.stringify({
    requests: latencies.length,
    rps: latencies.length / seconds,
    p50: percentile(50),
    p95: percentile(95),
    p99: percentile(99),
    errors: failed + result.errors + result.timeouts,
  }),
);
