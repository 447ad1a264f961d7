import DataLoader from 'dataloader';
import { type DocumentNode, type ExecutionResult, type FieldNode, type GraphQLResolveInfo, parse, print } from 'graphql';
import { type NodeCallContext, type NodeClient, NodeUnavailable } from './node-client.ts';

/** The node request for one selection of the stitched Person's node field, planned once. */
interface Plan {
  /** Selection and arguments as written: Person fields of one request that share it share a batch. */
  key: string;
  /**
   * Without a counterpart, the request holds only what DESIGN §5b's `records` takes, so that a
   * node built from §5b alone answers it; `counterpartRef`, which the node needs for the
   * counterpart's processing record, goes only with a counterpart.
   */
  document: DocumentNode;
  withCounterpart: DocumentNode;
}

const plans = new WeakMap<FieldNode, Plan>();
const loadersByRequest = new WeakMap<NodeCallContext, Map<string, DataLoader<string, unknown>>>();

/**
 * Batched delegation of one Person node field: every Person of the same request and round that
 * asks a node for the same selection with the same arguments (`at`, location, counterpart) joins
 * one batch, sent as a single `records` request (§5b) with all their BSNs in order; the root
 * fields of one request share their batches (the request's NodeCallContext is one object). The node document is planned once per selection of the gateway's
 * own (cached) Person documents. graphql-tools' generic delegation rebuilt, transformed and
 * printed it on every call, about a third of the gateway's CPU per request (README, Architecture).
 */
export function loadRecord(
  client: NodeClient,
  bsn: string,
  args: Record<string, unknown>,
  context: NodeCallContext,
  info: GraphQLResolveInfo,
): Promise<unknown> {
  const plan = planOf(info.fieldNodes[0]!);
  let loaders = loadersByRequest.get(context);
  if (!loaders) loadersByRequest.set(context, (loaders = new Map()));
  // Arguments by value: the plan names only the variables, and a Person asked about at another
  // instant or place is another question.
  const location = args['location'] as { lat: number; lon: number } | null | undefined;
  const loaderKey = `${client.nodeId}|${plan.key}|${String(args['at'])}|${location ? `${location.lat},${location.lon}` : ''}|${String(args['counterpartBsn'] ?? '')}`;
  let loader = loaders.get(loaderKey);
  if (!loader) {
    // No cache: a loader lives for one request, and answers are not kept even that long.
    loader = new DataLoader((bsns) => fetchRecords(client, plan, bsns, args, context), { cache: false });
    loaders.set(loaderKey, loader);
  }
  return loader.load(bsn);
}

function planOf(fieldNode: FieldNode): Plan {
  let plan = plans.get(fieldNode);
  if (!plan) {
    const selection = fieldNode.selectionSet ? print(fieldNode.selectionSet) : '';
    plan = {
      key: `${(fieldNode.arguments ?? []).map((argument) => print(argument)).join(',')}|${selection}`,
      document: recordsDocument(selection, false),
      withCounterpart: recordsDocument(selection, true),
    };
    plans.set(fieldNode, plan);
  }
  return plan;
}

function recordsDocument(selection: string, withCounterpart: boolean): DocumentNode {
  const variables = withCounterpart ? ', $counterpartBsn: String!, $counterpartRef: String!' : '';
  const args = withCounterpart ? ', counterpartBsn: $counterpartBsn, counterpartRef: $counterpartRef' : '';
  return parse(
    `query Records($bsns: [String!]!, $subjectRefs: [String!]!, $at: DateTime!, $location: GeoPointInput${variables}) {
      records(bsns: $bsns, subjectRefs: $subjectRefs, at: $at, location: $location${args}) ${selection}
    }`,
  );
}

/**
 * One `records` request for a batch. An error the node locates at one entry fails that person
 * only; any other error, or an answer that does not hold one entry per BSN, fails them all.
 */
async function fetchRecords(
  client: NodeClient,
  plan: Plan,
  bsns: readonly string[],
  args: Record<string, unknown>,
  context: NodeCallContext,
): Promise<unknown[]> {
  const counterpartBsn = (args['counterpartBsn'] as string | null | undefined) ?? null;
  const asked = { bsns, subjectRefs: bsns.map(context.subjectRef), at: args['at'], location: args['location'] ?? null };
  const { document, variables } =
    counterpartBsn === null
      ? { document: plan.document, variables: asked }
      : { document: plan.withCounterpart, variables: { ...asked, counterpartBsn, counterpartRef: context.subjectRef(counterpartBsn) } };
  // A call that fails outright rejects the batch, and DataLoader fails every person in it.
  const result = (await client.executor({ document, variables, context })) as ExecutionResult<{ records?: unknown[] }>;
  const records = result.data?.records;
  const failedAt = new Map<number, Error>();
  for (const error of result.errors ?? []) {
    const failure = new NodeUnavailable(client.nodeId, String(error.extensions?.['code'] ?? 'error'));
    const index = error.path?.[0] === 'records' ? error.path[1] : undefined;
    // Located at no entry of this batch (no index, or one past its end): it fails them all.
    if (typeof index !== 'number' || !Array.isArray(records) || !Number.isInteger(index) || index < 0 || index >= bsns.length) return bsns.map(() => failure);
    if (!failedAt.has(index)) failedAt.set(index, failure);
  }
  if (!Array.isArray(records) || records.length !== bsns.length) {
    const failure = new NodeUnavailable(client.nodeId, 'answer does not match the request');
    return bsns.map(() => failure);
  }
  // An entry is a record or null: anything else (`false`, `0`, a list) is an answer the gateway
  // cannot read, which a hit check, selecting no field it would fail on, would count as a hit.
  return records.map((record, index) => failedAt.get(index) ?? (record == null ? null : isRecord(record) ? record : new NodeUnavailable(client.nodeId, 'answer does not match the request')));
}

function isRecord(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
