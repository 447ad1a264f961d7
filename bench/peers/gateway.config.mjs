// Hive Gateway at its documented performance settings (JIT-compiled documents, one worker like
// ours), sending the benchmark's node token that nodes require on every subgraph request.
import { readFileSync } from 'node:fs';
import { defineConfig } from '@graphql-hive/gateway';

const tokenFile = process.env.SOH_BENCH_TOKEN_FILE;
let token = readFileSync(tokenFile, 'utf8');
setInterval(() => (token = readFileSync(tokenFile, 'utf8')), 5_000).unref();

export const gatewayConfig = defineConfig({
  jit: true,
  plugins: () => [
    {
      onFetch({ options, setOptions }) {
        setOptions({ ...options, headers: { ...options.headers, authorization: `Bearer ${token}` } });
      },
    },
  ],
});
