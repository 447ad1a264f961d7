import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { isValidBsn } from '../../lib/bsn.ts';
import { sohError } from '../../lib/errors.ts';
import type { ProcessingRecord, StatusCode } from '../../lib/audit/records.ts';
import { VERSION } from '../../lib/telemetry.ts';
import type { GeoPoint } from '../../lib/records.ts';
import { isSubjectRef } from '../../lib/subject-ref.ts';
import { toNodeRecord } from './node-record.ts';
import type { NodeContext, NodeDependencies } from './server.ts';

/** What a node tells about a counterpart: whether a ban protects them, and nothing else. */
const PROTECTS_COUNTERPART = 'NodeBan.protectsCounterpart';

/** The batch the gateway may ask in one call; more is a misbehaving client. */
const MAX_BATCH = 500;

interface RecordsArgs {
  bsns: string[];
  subjectRefs: string[];
  at: string;
  location?: GeoPoint | null;
  counterpartBsn?: string | null;
  counterpartRef?: string | null;
}

/**
 * `records`: one entry per requested BSN, in order, null where the node does not know the person.
 * Writes one processing record per subject, keyed by the gateway's subject reference, and one
 * about the counterpart when one was given: matching them against protected persons processes
 * them too.
 */
export function createRecordsResolver(deps: NodeDependencies) {
  const { definition, store, clock, tracer } = deps;
  return async (_root: unknown, args: RecordsArgs, { state }: NodeContext) => {
    const { bsns, subjectRefs } = args;
    const counterpartRef = args.counterpartRef ?? null;
    // The references go into this node's audit log: whatever else was sent there would too.
    if (!subjectRefs.every(isSubjectRef) || (counterpartRef !== null && !isSubjectRef(counterpartRef))) {
      throw sohError('BAD_USER_INPUT', 'Every subject reference must be one (22 base64url characters), never a BSN.');
    }
    if (bsns.length > MAX_BATCH || subjectRefs.length > MAX_BATCH) throw sohError('BAD_USER_INPUT', `At most ${MAX_BATCH} subjects per call.`);
    const refused = refusalOf(args);
    if (refused) {
      // Asked about, and refused before anything was looked up: on record all the same.
      recordRefusal(deps, state, args);
      throw sohError('BAD_USER_INPUT', refused);
    }
    const counterpartBsn = args.counterpartBsn ?? null;
    const location = args.location ?? null;

    const span = tracer.startSpan('node.records', {}, trace.setSpan(ROOT_CONTEXT, state.span));
    const startTime = clock.now();
    const record = recorder(deps, state, { ...span.spanContext(), parentSpanId: state.span.spanContext().spanId }, startTime);
    try {
      let found: Awaited<ReturnType<typeof store.lookup>>;
      let records: (ReturnType<typeof toNodeRecord> | null)[];
      try {
        // The fields this call selects, as the release check listed them: a hit check reads no bans,
        // unless a counterpart is asked about, whom only the bans can protect.
        found = await store.lookup(bsns, { withBans: state.fieldsReleased.includes('NodeRecord.bans') || counterpartBsn !== null });
        records = found.map((person) =>
          person ? toNodeRecord(person, { defaultContact: definition.defaultContact, location, counterpartBsn, at: Date.parse(args.at), now: startTime }) : null,
        );
      } catch (error) {
        // An internal fault: every subject asked about was still processed, and the node could not
        // tell whether it knows them (DESIGN §7, status ERROR only for internal faults).
        for (const subjectRef of subjectRefs) record(subjectRef, 'UNAVAILABLE', [], 'ERROR');
        if (counterpartRef !== null) record(counterpartRef, 'UNAVAILABLE', [], 'ERROR');
        throw error;
      }
      found.forEach((person, index) => record(subjectRefs[index]!, person ? 'HIT' : 'NO_HIT', person ? state.fieldsReleased : []));
      if (counterpartRef !== null) {
        // What this node knows of the counterpart: that a ban of the subject it holds names them,
        // whatever the ban's kind or status (the gateway decides which bans count at `at`).
        const bans = records.flatMap((nodeRecord) => nodeRecord?.bans ?? []);
        const released = bans.length > 0 && state.fieldsReleased.includes(PROTECTS_COUNTERPART) ? [PROTECTS_COUNTERPART] : [];
        record(counterpartRef, bans.some((ban) => ban.protectsCounterpart) ? 'HIT' : 'NO_HIT', released);
      }
      span.setAttribute('soh.subjects', state.subjects);
      return records;
    } finally {
      span.end();
    }
  };
}

/** Why a call's input is refused (BAD_USER_INPUT), once its references and size are known good. */
function refusalOf(args: RecordsArgs): string | null {
  if (args.bsns.length !== args.subjectRefs.length) return 'bsns and subjectRefs must have the same length.';
  if (!args.bsns.every(isValidBsn)) return 'Every subject must be a valid BSN.';
  const counterpartBsn = args.counterpartBsn ?? null;
  if (counterpartBsn !== null && !isValidBsn(counterpartBsn)) return 'counterpartBsn must be a valid BSN.';
  if ((counterpartBsn === null) !== ((args.counterpartRef ?? null) === null)) {
    return 'counterpartBsn and counterpartRef go together: the counterpart is processed, and recorded by its reference.';
  }
  const location = args.location ?? null;
  if (location && (Math.abs(location.lat) > 90 || Math.abs(location.lon) > 180)) return 'location must be WGS84 degrees (lat −90…90, lon −180…180).';
  return null;
}

/** Writes the processing records of one call: one per subject it names, in the request's state. */
function recorder(deps: NodeDependencies, state: NodeContext['state'], span: { traceId: string; spanId: string; parentSpanId: string | null }, startTime: number) {
  const activity = deps.policies.purposes.get(state.claims!.purpose)?.processingActivity ?? 'unknown';
  return (subjectRef: string, outcome: Outcome, fieldsReleased: string[], statusCode: StatusCode = 'UNSET') => {
    state.subjects++;
    if (outcome === 'HIT') state.hits++;
    state.processing.push(
      processingRecord({
        component: deps.definition.id,
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId,
        startTime,
        endTime: deps.clock.now(),
        activity,
        subjectRef,
        statusCode,
        outcome,
        fieldsReleased,
      }),
    );
  };
}

/**
 * The records of a call refused before anything was looked up (its input, or a field the node
 * does not release for the purpose): one per subject reference it carried, outcome DENIED,
 * nothing released, so that the node's own log shows who was asked about (DESIGN §7: UNSET for
 * client errors and policy denials). Only what is a subject reference, and no more than a batch.
 */
export function recordRefusal(deps: NodeDependencies, state: NodeContext['state'], args: { subjectRefs?: unknown; counterpartRef?: unknown }): void {
  const refs = [...(Array.isArray(args.subjectRefs) ? args.subjectRefs : []), args.counterpartRef].filter(
    (ref): ref is string => typeof ref === 'string' && isSubjectRef(ref),
  );
  // Refused before a node.records span began: the records belong to the call's own span, whose parent is the gateway's.
  const record = recorder(deps, state, { ...state.span.spanContext(), parentSpanId: state.parentSpanId }, deps.clock.now());
  for (const ref of refs.slice(0, MAX_BATCH + 1)) record(ref, 'DENIED', []);
}

/** What the node could say about one subject; DENIED when it was refused the question. */
type Outcome = 'HIT' | 'NO_HIT' | 'UNAVAILABLE' | 'DENIED';

function processingRecord(r: {
  component: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  startTime: number;
  endTime: number;
  activity: string;
  subjectRef: string;
  statusCode: StatusCode;
  outcome: Outcome;
  fieldsReleased: string[];
}): ProcessingRecord {
  return {
    type: 'processing',
    trace_id: r.traceId,
    span_id: r.spanId,
    parent_span_id: r.parentSpanId,
    name: 'node.records',
    start_time: r.startTime,
    end_time: r.endTime,
    status_code: r.statusCode,
    foreign_operation: null,
    resource: { component: r.component, version: VERSION },
    attributes: {
      'dpl.core.processing_activity_id': r.activity,
      'dpl.core.data_subject_id': r.subjectRef,
      'dpl.core.data_subject_id_type': 'bsn-ref',
      'soh.outcome': r.outcome,
      'soh.fields_released': r.fieldsReleased,
    },
  };
}
