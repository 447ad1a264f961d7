import type { Tracer } from '@opentelemetry/api';
import { type ExecutionResult, parse } from 'graphql';
import { z } from 'zod';
import { openAuditReader } from '../../lib/audit/log.ts';
import { type AccessFilter, AuditReader, type StoredRecord, processingRecordView } from '../../lib/audit/query.ts';
import type { GatewayAccessRecord, ProcessingRecord } from '../../lib/audit/records.ts';
import { isValidBsn } from '../../lib/bsn.ts';
import type { Clock } from '../../lib/clock.ts';
import { sohError } from '../../lib/errors.ts';
import { PARTNER_INFO, type Partner, partnerInfo, partnerOfOrg } from '../../lib/partners.ts';
import { dateTime, isDateTime } from '../../lib/records.ts';
import type { SubjectRefFn } from '../../lib/subject-ref.ts';
import type { NodeCallContext, NodeClient } from '../federation/node-client.ts';
import { gatewayProcessingRecord } from '../audit/processing-record.ts';
import type { GatewayContext } from '../request-state.ts';

interface AccessLogArgs {
  filter: { traceId?: string | null; subjectBsn?: string | null; purpose?: string | null; requesterSub?: string | null; from?: string | null; to?: string | null };
  first?: number | null;
  after?: string | null;
}

const TRACE_ID = /^[0-9a-f]{32}$/;
/** What a node's `processingRecords` takes at once (nodes/runtime/processing-records.ts). */
const MAX_TRACES_PER_NODE_CALL = 1_000;

/** A node's `processingRecords` answer, as schemas/node.graphql promises it. */
const nodeAnswer = z.object({
  processingRecords: z.array(
    z.object({
      component: z.string(),
      name: z.string(),
      traceId: z.string(),
      spanId: z.string(),
      parentSpanId: z.string().nullable(),
      startTime: dateTime,
      endTime: dateTime,
      statusCode: z.string(),
      attributes: z.record(z.string(), z.unknown()),
      chainValid: z.boolean(),
    }),
  ),
});
type NodeRecordView = z.infer<typeof nodeAnswer>['processingRecords'][number];

/** Whether a node's processing record says it found its subject or released data about them. */
function providedData(record: NodeRecordView): boolean {
  const released = record.attributes['soh.fields_released'];
  return record.attributes['soh.outcome'] === 'HIT' || (Array.isArray(released) && released.length > 0);
}

function toFilter(args: AccessLogArgs, subjectRef: SubjectRefFn): AccessFilter {
  const { traceId, subjectBsn, purpose, requesterSub, from, to } = args.filter;
  const narrowed = Boolean(traceId || subjectBsn || purpose || requesterSub);
  if (!narrowed) {
    throw sohError('BAD_USER_INPUT', 'The filter must name traceId, subjectBsn or purpose, or requesterSub together with from and to.');
  }
  // DESIGN §7: a search by requester is bounded in time, whatever else the filter names.
  if (requesterSub && !(from && to)) throw sohError('BAD_USER_INPUT', 'requesterSub is accepted only together with from and to.');
  if (traceId && !TRACE_ID.test(traceId)) throw sohError('BAD_USER_INPUT', 'traceId must be 32 lower-case hex digits.');
  if (subjectBsn && !isValidBsn(subjectBsn)) throw sohError('BAD_USER_INPUT', 'subjectBsn is not a valid BSN.');
  for (const [name, value] of [['from', from], ['to', to]] as const) {
    if (value && !isDateTime(value)) throw sohError('BAD_USER_INPUT', `${name} must be an RFC 3339 date-time with offset.`);
  }
  return {
    ...(traceId ? { traceId } : {}),
    ...(subjectBsn ? { subjectRef: subjectRef(subjectBsn) } : {}),
    ...(purpose ? { purpose } : {}),
    ...(requesterSub ? { requesterSub } : {}),
    ...(from ? { from: recordMillis(from) } : {}),
    ...(to ? { to: recordMillis(to) } : {}),
  };
}

/**
 * A bound of the window as the records' whole-millisecond times compare with it: Date.parse cuts
 * finer digits off, which would let `to: …00.0005Z` leave out a record of …00.000Z, and `from`
 * take one in; rounded up, `time ≥ from` and `time < to` stay exact.
 */
function recordMillis(value: string): number {
  return Date.parse(value) + (/\.\d{3}\d*[1-9]/.test(value) ? 1 : 0);
}

const encodeCursor = (seq: number) => Buffer.from(`seq:${seq}`).toString('base64url');
function decodeCursor(cursor: string): number {
  const match = /^seq:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw sohError('BAD_USER_INPUT', 'after is not a cursor from this access log.');
  return Number(match[1]);
}

/**
 * `accessLog` (DESIGN §5, §7): the gateway's access records matching a narrowing filter, newest
 * first, paged by cursor, each with every component's processing records of that trace. An
 * officer sees a request only when their organisation was the requester or a provider.
 */
export function createAccessLogResolver(deps: {
  auditFile: string;
  clients: ReadonlyMap<Partner, NodeClient>;
  subjectRef: SubjectRefFn;
  clock: Clock;
  tracer: Tracer;
}) {
  let reader: AuditReader | null = null;
  // Each node's own processing records of the page's traces, asked of every node directly (one
  // request per node, through its client: token, deadline, breaker and trace context as always).
  const nodeQuery = parse(
    'query ProcessingRecords($traceIds: [String!]!) { processingRecords(traceIds: $traceIds) { component name traceId spanId parentSpanId startTime endTime statusCode attributes chainValid } }',
  );
  async function nodeRecordsOf(partner: Partner, traceIds: string[], call: NodeCallContext): Promise<NodeRecordView[] | null> {
    const client = deps.clients.get(partner);
    if (!client) return null;
    try {
      const result = (await client.executor({ document: nodeQuery, variables: { traceIds }, context: call })) as ExecutionResult;
      // A node may be built by anyone from the node API alone: an answer that does not keep to it
      // counts as no answer; so does one holding records of another component, or of a trace it
      // was not asked about, which would show in officers' timelines as what they are not.
      const answer = nodeAnswer.safeParse(result.data);
      if (!answer.success) return null;
      const { nodeId } = partnerInfo(partner);
      const asked = new Set(traceIds);
      const records = answer.data.processingRecords;
      return records.every((record) => record.component === nodeId && asked.has(record.traceId)) ? records : null;
    } catch {
      return null;
    }
  }

  /**
   * Up to `limit` requests the officer may see, from `beforeSeq` back. The gateway's records
   * decide, except where the officer's node was asked but did not answer in time: it may still have
   * found the person or released data (a provider, DESIGN §7), which only its own processing
   * records tell, so it is asked. Unconfirmed requests stay hidden, also when the node cannot say.
   */
  async function visibleRows(
    filter: AccessFilter,
    viewer: { org: string; partner: Partner | null },
    limit: number,
    beforeSeq: number | null,
    call: NodeCallContext,
    onNodeSilent: () => void,
  ): Promise<{ visible: { seq: number; traceId: string }[]; stoppedAt?: number }> {
    const visible: { seq: number; traceId: string }[] = [];
    // Rows are read in batches a node may be asked about in one call (it takes at most 1,000 trace
    // ids), and never in very small ones: hidden rows must not cost a query each.
    const batch = Math.min(MAX_TRACES_PER_NODE_CALL, Math.max(limit, 100));
    let nodeSilent = false;
    for (let before = beforeSeq; ; ) {
      const rows = reader!.accessTraces(filter, viewer, batch, before);
      const unconfirmed = [...new Set(rows.filter((row) => !row.confirmed).map((row) => row.traceId))];
      const provided = new Set<string>();
      // A node that did not answer once is not asked again for this page: its requests stay hidden.
      if (unconfirmed.length > 0 && !nodeSilent) {
        const records = await nodeRecordsOf(viewer.partner!, unconfirmed, call);
        if (!records) {
          nodeSilent = true;
          onNodeSilent();
        }
        for (const record of records ?? []) if (providedData(record)) provided.add(record.traceId);
      }
      for (const row of rows) {
        if (row.confirmed || provided.has(row.traceId)) visible.push(row);
        if (visible.length === limit) return { visible };
      }
      if (rows.length < batch) return { visible };
      before = rows.at(-1)!.seq;
      // Hidden rows can run on for the whole log (the officer's node silent over a long outage),
      // each batch read on the event loop: past the deadline the page ends where the reading did,
      // and its cursor goes on from there.
      if (call.deadline.remainingMs() <= 0) return { visible, stoppedAt: before };
    }
  }

  return async (_root: unknown, args: AccessLogArgs, { state }: GatewayContext) => {
    const filter = toFilter(args, deps.subjectRef);
    const first = args.first ?? 25;
    if (!Number.isInteger(first) || first < 1 || first > 1000) throw sohError('BAD_USER_INPUT', 'first must be between 1 and 1000.');
    const beforeSeq = args.after ? decodeCursor(args.after) : null;
    const caller = state.caller!;
    reader ??= new AuditReader(openAuditReader(deps.auditFile));
    const call = { caller, deadline: state.deadline, span: state.span, subjectRef: deps.subjectRef, reached: state.reached };
    const silent = new Set<Partner>();
    const unavailable = (partner: Partner) => {
      if (silent.has(partner)) return;
      silent.add(partner);
      state.partialErrors.push(sohError('PARTNER_UNAVAILABLE', `${partner} did not return its processing records.`, { partner }));
    };
    const officerPartner = partnerOfOrg(caller.org);
    // Its own error, marked: what is missing is not part of a timeline but requests themselves,
    // which this page and the ones after it pass over; a later search may show them.
    const unchecked = () =>
      state.partialErrors.push(
        sohError('PARTNER_UNAVAILABLE', `${officerPartner} did not say which requests it provided data for; those it may have are not shown. Search again later.`, {
          partner: officerPartner!,
          requestsUnchecked: true,
        }),
      );
    const { visible: rows, stoppedAt } = await visibleRows(filter, { org: caller.org, partner: officerPartner }, first + 1, beforeSeq, call, unchecked);
    const page = rows.slice(0, first);

    const traceIds = [...new Set(page.map((row) => row.traceId))];
    const nodeRecords = new Map<string, NodeRecordView[]>();
    // Asked of the nodes only for a page that shows timelines: each answer is processing of the
    // persons in those records, on record at every node, and is not done for nothing.
    if (traceIds.length > 0 && state.selected.has('AccessRequest.records')) {
      const answers = await Promise.all(PARTNER_INFO.map((info) => nodeRecordsOf(info.partner, traceIds, call)));
      for (const [index, info] of PARTNER_INFO.entries()) {
        const records = answers[index];
        if (!records) {
          unavailable(info.partner);
          continue;
        }
        for (const record of records) {
          const list = nodeRecords.get(record.traceId) ?? [];
          list.push(record);
          nodeRecords.set(record.traceId, list);
        }
      }
    }

    const showsTimelines = state.selected.has('AccessRequest.records');
    const edges = page.map((row) => {
      const access = reader!.accessRecord(row.seq) as StoredRecord & GatewayAccessRecord;
      const own = showsTimelines
        ? reader!
            .recordsOfTrace(row.traceId)
            .filter(({ record }) => record.type === 'processing' && belongsToSearch(record as ProcessingRecord, filter.subjectRef))
            .map(({ record, chainValid }) => processingRecordView(record as ProcessingRecord, chainValid))
        : [];
      // By instant: a node's times may carry another offset, or more digits than a millisecond.
      const records = [...own, ...(nodeRecords.get(row.traceId) ?? [])].sort((a, b) => Date.parse(a.startTime) - Date.parse(b.startTime));
      return {
        cursor: encodeCursor(row.seq),
        node: {
          traceId: access.trace_id,
          time: access.time,
          requester: access.requester,
          purpose: access.purpose,
          processingActivity: access.processingActivity,
          legalBasis: access.legalBasis,
          caseRef: access.caseRef,
          operation: access.operation.name ?? (access.operation.fields.filter((f) => f.startsWith('Query.')).join(',') || 'anonymous'),
          decision: access.decision,
          rule: access.rule,
          policyRevision: access.policyRevision,
          outcome: access.outcome,
          partners: access.partners as { partner: Partner; status: string }[],
          records,
        },
      };
    });
    // Searching by a person processes them; so does showing a person in a timeline, whatever was
    // searched by (DESIGN §7: one record per data subject per action), so that a search by purpose
    // or trace is in the history of everyone its page names. A person an earlier search showed is
    // not counted again: each search would otherwise copy every earlier one's into its own trace.
    const shown = new Map<string, number>(filter.subjectRef ? [[filter.subjectRef, page.length]] : []);
    for (const { node } of edges) {
      const named = new Set(node.records.filter((record) => record.name !== 'accessLog').map((record) => record.attributes['dpl.core.data_subject_id']));
      for (const subjectRef of named) {
        if (typeof subjectRef === 'string' && subjectRef !== filter.subjectRef) shown.set(subjectRef, (shown.get(subjectRef) ?? 0) + 1);
      }
    }
    for (const [subjectRef, requests] of shown) state.processing.push(accessLogProcessing(state, subjectRef, requests, deps.clock.now()));
    return {
      edges,
      pageInfo:
        stoppedAt === undefined
          ? { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null }
          : { hasNextPage: true, endCursor: encodeCursor(stoppedAt) },
    };
  };
}

/**
 * Whether a record of the gateway's is part of a search's timeline. In a search by person, an
 * earlier search's trace shows only its record of that person: the others it showed are not part
 * of this person's history.
 */
function belongsToSearch(record: ProcessingRecord, subjectRef: string | undefined): boolean {
  return subjectRef === undefined || record.name !== 'accessLog' || record.attributes['dpl.core.data_subject_id'] === subjectRef;
}

/** The processing record of one person a page of the access log searched by or showed: `soh.requests_returned` requests named them. */
function accessLogProcessing(state: GatewayContext['state'], subjectRef: string, requests: number, now: number): ProcessingRecord {
  return gatewayProcessingRecord(state, {
    span: state.span.spanContext(),
    parentSpanId: null,
    name: 'accessLog',
    startTime: state.startTime,
    endTime: now,
    activity: state.purpose!.processingActivity,
    subjectRef,
    attributes: { 'soh.requests_returned': requests },
  });
}
