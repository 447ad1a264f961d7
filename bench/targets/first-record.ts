import type { Pool } from 'undici';

/**
 * One node's first record for the `records` request in `body`, null where the node does not know
 * the person. A node that refuses the call (401, 5xx) or answers with errors throws: taken for
 * "no record", it would let the fan-out answer fast and empty and still count as a success.
 */
export async function firstRecord(pool: Pool, body: string, token: string): Promise<unknown> {
  const response = await pool.request({
    path: '/graphql',
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body,
  });
  // Read whatever the status, so that the pooled connection is free for the next call.
  const text = await response.body.text();
  const result = (response.statusCode === 200 ? JSON.parse(text) : {}) as { data?: { records: unknown[] } | null; errors?: unknown[] };
  if (response.statusCode !== 200 || result.errors || !result.data) throw new Error(`node answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
  return result.data.records[0] ?? null;
}
