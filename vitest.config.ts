import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Node resolves `graphql` to its CommonJS build for our dependencies; the tests must load the
    // same instance, or graphql-js refuses to mix schemas from two copies.
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Federation tests start real processes; two files at a time suits a 2-core machine.
    maxWorkers: 2,
    pool: 'forks',
  },
});
