import type { Server } from 'node:http';
import { z } from 'zod';
import { NODE_IDS } from '../../lib/partners.ts';

const env = z.object({
  SOH_BENCH_NODES: z.string().transform((text) => z.record(z.enum(NODE_IDS), z.url()).parse(JSON.parse(text))),
  SOH_BENCH_TOKEN_FILE: z.string().min(1),
  SOH_BENCH_PORT: z.coerce.number().int().min(0).max(65_535).default(0),
});

/** What every benchmark target process is told: the node URLs, the node-token file, its port. */
export function benchEnv() {
  const parsed = env.parse(process.env);
  return { nodes: parsed.SOH_BENCH_NODES, tokenFile: parsed.SOH_BENCH_TOKEN_FILE, port: parsed.SOH_BENCH_PORT };
}

/** Listens on loopback and prints the line the benchmark waits for. */
export function listen(server: Server, port: number, name: string): void {
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => {
    const address = server.address();
    if (address && typeof address === 'object') console.log(`${name} listening on http://127.0.0.1:${address.port}`);
  });
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}
