import { ROOT_CONTEXT, type Tracer, trace } from '@opentelemetry/api';
import type { Clock } from '../../lib/clock.ts';
import { sohError } from '../../lib/errors.ts';
import { PARTNER_INFO, PARTNERS, type Partner } from '../../lib/partners.ts';
import { VERSION } from '../../lib/telemetry.ts';
import type { PartnerAnswer, PersonArgs, PersonFetcher } from '../federation/person-fetcher.ts';
import { type GatewayContext, type HitStatus, recordPartnerStatus } from '../request-state.ts';
import { mergeBans } from './bans.ts';
import { activeBansSelection, contactBannedSelection, hitCheckSelection } from './node-selection.ts';

export interface PersonResolverDeps {
  fetcher: PersonFetcher;
  clock: Clock;
  tracer: Tracer;
}

const BAN_PARTNERS = PARTNER_INFO.filter((info) => info.holdsBans).map((info) => info.partner);

function requireLocation(location: { lat: number; lon: number } | null | undefined) {
  if (location && (!(Math.abs(location.lat) <= 90) || !(Math.abs(location.lon) <= 180))) {
    throw sohError('BAD_USER_INPUT', 'location must be WGS84 degrees: lat −90…90, lon −180…180.');
  }
  return location ?? null;
}

/** `complete`, and the tri-state of DESIGN §5: true on any hit, false only when complete, else null. */
function triState(anyTrue: boolean, complete: boolean): boolean | null {
  return anyTrue ? true : complete ? false : null;
}

/**
 * The public person queries: hitCheck, activeBans, contactBanned. Every BSN they are given has
 * been admitted before the operation ran (./subject-admission.ts).
 */
export function createPersonResolvers(deps: PersonResolverDeps) {
  const { fetcher, clock, tracer } = deps;

  async function ask(
    operation: string,
    ctx: GatewayContext,
    subjects: { bsn: string }[],
    partners: readonly Partner[],
    selection: string,
    args: PersonArgs,
  ): Promise<PartnerAnswer[]> {
    const { state } = ctx;
    const span = tracer.startSpan(operation, {}, trace.setSpan(ROOT_CONTEXT, state.span));
    const startTime = clock.now();
    const answers = await fetcher.fetch(subjects[0]!.bsn, partners, selection, args, {
      caller: state.caller!,
      deadline: state.deadline,
      span,
      subjectRef: ctx.state.subjectRef,
    });
    span.end();
    for (const answer of answers) {
      if (answer.answered) {
        if (answer.record) state.providers.add(answer.partner);
        continue;
      }
      state.partnerErrors.push(
        sohError('PARTNER_UNAVAILABLE', `${answer.partner} did not answer in time or refused; its status is UNAVAILABLE.`, {
          partner: answer.partner,
        }),
      );
    }
    const outcome = Object.fromEntries(answers.map((a) => [a.partner, a.answered ? (a.record ? 'HIT' : 'NO_HIT') : 'UNAVAILABLE']));
    const { traceId, spanId } = span.spanContext();
    for (const subject of subjects) {
      state.processing.push({
        type: 'processing',
        trace_id: traceId,
        span_id: spanId,
        parent_span_id: state.span.spanContext().spanId,
        name: operation,
        start_time: startTime,
        end_time: clock.now(),
        status_code: 'UNSET',
        foreign_operation: state.foreign,
        resource: { component: 'gateway', version: VERSION },
        attributes: {
          'dpl.core.processing_activity_id': state.purpose!.processingActivity,
          'dpl.core.data_subject_id': ctx.state.subjectRef(subject.bsn),
          'dpl.core.data_subject_id_type': 'bsn-ref',
          'soh.partners': outcome,
          'soh.fields': state.operation.fields,
        },
      });
    }
    return answers;
  }

  function atOrNow(at: string | null | undefined): { iso: string; ms: number } {
    const ms = at ? Date.parse(at) : clock.now();
    return { iso: at ?? new Date(ms).toISOString(), ms };
  }

  function banPartners(
    answers: PartnerAnswer[],
    ctx: GatewayContext,
    statusOf: (answer: Extract<PartnerAnswer, { answered: true }>) => HitStatus,
  ) {
    return answers.map((answer) => {
      const status = answer.answered ? statusOf(answer) : 'UNAVAILABLE';
      recordPartnerStatus(ctx.state, answer.partner, status);
      return { partner: answer.partner, status };
    });
  }

  function copies(answers: PartnerAnswer[]) {
    return answers.flatMap((answer) => (answer.answered && answer.record?.bans ? answer.record.bans.map((ban) => ({ partner: answer.partner, ban })) : []));
  }

  return {
    async hitCheck(_root: unknown, args: { subject: { bsn: string } }, ctx: GatewayContext) {
      const bsn = args.subject.bsn;
      const answers = await ask('hitCheck', ctx, [{ bsn }], PARTNERS, hitCheckSelection(ctx.state.selected), {
        at: new Date(clock.now()).toISOString(),
      });
      const partners = answers.map((answer) => {
        const status: HitStatus = !answer.answered ? 'UNAVAILABLE' : answer.record ? 'HIT' : 'NO_HIT';
        recordPartnerStatus(ctx.state, answer.partner, status);
        return { partner: answer.partner, status, contact: answer.answered ? (answer.record?.contact ?? null) : null };
      });
      const complete = partners.every((p) => p.status !== 'UNAVAILABLE');
      return { subjectRef: ctx.state.subjectRef(bsn), complete, anyHit: triState(partners.some((p) => p.status === 'HIT'), complete), partners };
    },

    async activeBans(
      _root: unknown,
      args: { subject: { bsn: string }; at?: string | null; location?: { lat: number; lon: number } | null },
      ctx: GatewayContext,
    ) {
      const bsn = args.subject.bsn;
      const location = requireLocation(args.location);
      const at = atOrNow(args.at);
      const answers = await ask('activeBans', ctx, [{ bsn }], BAN_PARTNERS, activeBansSelection(ctx.state.selected), {
        at: at.iso,
        location,
      });
      const bans = mergeBans(copies(answers), at.ms, ctx.state.subjectRef).map(({ protectsCounterpart: _p, ...ban }) => ({
        ...ban,
        violatedAt: location ? (ban.violatedAt ?? null) : null,
      }));
      const partners = banPartners(answers, ctx, (answer) => (bans.some((ban) => ban.reportedBy.includes(answer.partner)) ? 'HIT' : 'NO_HIT'));
      const complete = partners.every((p) => p.status !== 'UNAVAILABLE');
      return { subjectRef: ctx.state.subjectRef(bsn), complete, underActiveBan: triState(bans.length > 0, complete), bans, partners };
    },

    async contactBanned(
      _root: unknown,
      args: { subject: { bsn: string }; counterpart: { bsn: string }; at?: string | null },
      ctx: GatewayContext,
    ) {
      const bsn = args.subject.bsn;
      const counterpartBsn = args.counterpart.bsn;
      const at = atOrNow(args.at);
      const answers = await ask('contactBanned', ctx, [{ bsn }, { bsn: counterpartBsn }], BAN_PARTNERS, contactBannedSelection(), {
        at: at.iso,
        counterpartBsn,
      });
      const matching = mergeBans(copies(answers), at.ms, ctx.state.subjectRef).filter(
        (ban) => (ban.kind === 'CONTACT' || ban.kind === 'HOUSE') && ban.protectsCounterpart,
      );
      const partners = banPartners(answers, ctx, (answer) => (matching.some((ban) => ban.reportedBy.includes(answer.partner)) ? 'HIT' : 'NO_HIT'));
      const complete = partners.every((p) => p.status !== 'UNAVAILABLE');
      return { complete, banned: triState(matching.length > 0, complete), banIds: matching.map((ban) => ban.id), partners };
    },
  };
}
