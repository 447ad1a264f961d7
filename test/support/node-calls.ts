import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Caller } from '../../gateway/auth/caller-token.ts';
import { DownstreamTokens } from '../../gateway/auth/downstream-token.ts';
import { GatewayKeys } from '../../gateway/auth/gateway-keys.ts';
import { openAuditReader } from '../../lib/audit/log.ts';
import { systemClock } from '../../lib/clock.ts';
import { NODE_IDS, type NodeId } from '../../lib/partners.ts';
import type { GraphQLBody } from './federation.ts';

/**
 * Observing node calls through the nodes' own audit logs (DESIGN §7): every node writes one access
 * record per call, durably, before it answers. Reading the files read-only never disturbs the
 * node that writes them.
 */
export interface NodeAccess {
  seq: number;
  sub: string;
  org: string;
  purpose: string;
  decision: string;
  fieldsReleased: string[];
  /** How many persons the call asked about. */
  subjects: number;
}

export function nodeAuditFile(dataDir: string, node: NodeId): string {
  return join(dataDir, 'nodes', node, 'audit.db');
}

/** Every access record of one node, in chain order. */
export function nodeAccessRecords(dataDir: string, node: NodeId): NodeAccess[] {
  const file = nodeAuditFile(dataDir, node);
  if (!existsSync(file)) return [];
  const db = openAuditReader(file);
  try {
    const rows = db.prepare("SELECT seq, body FROM records WHERE kind = 'access' ORDER BY seq").all() as { seq: number; body: string }[];
    return rows.map(({ seq, body }) => {
      const record = JSON.parse(body) as {
        requester: { sub: string; org: string };
        purpose: string;
        decision: string;
        fieldsReleased: string[];
        subjects: number;
      };
      return {
        seq,
        sub: record.requester.sub,
        org: record.requester.org,
        purpose: record.purpose,
        decision: record.decision,
        fieldsReleased: record.fieldsReleased,
        subjects: record.subjects,
      };
    });
  } finally {
    db.close();
  }
}

/** The records one component's audit log (gateway or node) holds of one kind for one column value, in chain order. */
function recordsWhere(file: string, kind: 'access' | 'processing', column: 'requester_sub' | 'trace_id', value: string): any[] {
  const db = openAuditReader(file);
  try {
    const rows = db.prepare(`SELECT body FROM records WHERE kind = ? AND ${column} = ? ORDER BY seq`).all(kind, value) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body));
  } finally {
    db.close();
  }
}

/** The access records of one component's audit log (gateway or node) for one requester `sub`, in chain order. */
export function accessRecordsOf(file: string, sub: string): any[] {
  return recordsWhere(file, 'access', 'requester_sub', sub);
}

/** The processing records of one trace in one component's audit log (gateway or node), in chain order. */
export function processingOfTrace(file: string, traceId: string): { name: string; attributes: Record<string, unknown> }[] {
  return recordsWhere(file, 'processing', 'trace_id', traceId);
}

/** A node's processing records of the calls of one requester `sub`: those of the traces its access records name. */
export function nodeProcessingOf(dataDir: string, node: NodeId, sub: string): { name: string; status_code: string; attributes: Record<string, unknown> }[] {
  const db = openAuditReader(nodeAuditFile(dataDir, node));
  try {
    const rows = db
      .prepare(
        `SELECT body FROM records WHERE kind = 'processing'
           AND trace_id IN (SELECT trace_id FROM records WHERE kind = 'access' AND requester_sub = ?) ORDER BY seq`,
      )
      .all(sub) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body));
  } finally {
    db.close();
  }
}

/** How many access records each node holds: one per call it received. */
export function nodeCallCounts(dataDir: string): Record<NodeId, number> {
  return Object.fromEntries(NODE_IDS.map((node) => [node, nodeAccessRecords(dataDir, node).length])) as Record<NodeId, number>;
}

/** The requester subjects (`sub`) each node has seen a call for. */
export function nodeCallSubjects(dataDir: string): Record<NodeId, Set<string>> {
  return Object.fromEntries(NODE_IDS.map((node) => [node, new Set(nodeAccessRecords(dataDir, node).map((r) => r.sub))])) as Record<
    NodeId,
    Set<string>
  >;
}

/**
 * Mints a downstream token exactly as the gateway does (its own keys under <data>/gateway/keys,
 * which the nodes trust), for any caller identity and purpose the test chooses.
 */
export function nodeTokenMinter(dataDir: string) {
  const tokens = new DownstreamTokens(new GatewayKeys(dataDir), systemClock);
  return (node: string, caller: Partial<Caller> & { purpose: string }): Promise<string> =>
    tokens.mint(node, {
      iss: 'https://idp.test.example',
      sub: `node-test-${randomUUID()}`,
      org: 'politie',
      roles: ['politie-medewerker'],
      caseRef: 'PL-2026-0001',
      jti: randomUUID(),
      ...caller,
    });
}

/**
 * A node answering, inside an existing trace, the hit check the gateway sends it for a Veilig Thuis
 * worker: what a late answer leaves in the node's log. Returns the HTTP status.
 */
export async function hitCheckInTrace(
  dataDir: string,
  node: { id: NodeId; url: string },
  call: { sub: string; org: string; bsn: string; subjectRef: string; traceId: string },
): Promise<number> {
  const token = await nodeTokenMinter(dataDir)(node.id, { sub: call.sub, org: call.org, roles: ['vt-medewerker'], purpose: 'vt-hit-check', caseRef: 'VT-2026-000123' });
  const response = await fetch(`${node.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, traceparent: `00-${call.traceId}-${'1'.repeat(16)}-01` },
    body: JSON.stringify({
      query: 'query Late($bsns: [String!]!, $refs: [String!]!, $at: DateTime!) { records(bsns: $bsns, subjectRefs: $refs, at: $at) { contact { organisation } } }',
      variables: { bsns: [call.bsn], refs: [call.subjectRef], at: new Date().toISOString() },
    }),
  });
  await response.text();
  return response.status;
}

/** POSTs a node-API document straight to a node, bypassing the gateway. */
export async function callNode(
  url: string,
  token: string | null,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string; body: GraphQLBody }> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? (JSON.parse(text) as GraphQLBody) : {} };
}

/** Runs `tasks` with at most `limit` in flight, keeping their order in the result. */
export async function inBatches<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) {
        const index = next++;
        results[index] = await tasks[index]!();
      }
    }),
  );
  return results;
}
