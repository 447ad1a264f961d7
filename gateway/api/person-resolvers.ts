import { ROOT_CONTEXT, type Span, type Tracer, trace } from '@opentelemetry/api';
import type { StatusCode } from '../../lib/audit/records.ts';
import type { Clock } from '../../lib/clock.ts';
import { sohError } from '../../lib/errors.ts';
import { PARTNER_INFO, PARTNERS, type Partner } from '../../lib/partners.ts';
import type { PartnerAnswer, PersonArgs, PersonFetcher } from '../federation/person-fetcher.ts';
import { gatewayProcessingRecord } from '../audit/processing-record.ts';
import { type GatewayContext, type HitStatus, recordPartnerStatus } from '../request-state.ts';
import { type RateLimiter, locationLeftOut } from '../rate-limits.ts';
import { mergeBans } from './bans.ts';
import { activeBansSelection, contactBannedSelection, hitCheckSelection } from './node-selection.ts';

export interface PersonResolverDeps {
  fetcher: PersonFetcher;
  clock: Clock;
  tracer: Tracer;
  /** Location checks per caller and subject (RateLimits.locationChecks). */
  locationChecks: RateLimiter;
}

/** One question put to the partners, for its processing records. */
interface Asked {
  operation: string;
  answers: PartnerAnswer[];
  span: Span;
  startTime: number;
  endTime: number;
  /** Fields asked for but not released, so that its processing records do not claim them. */
  withheld?: readonly string[];
}

const BAN_PARTNERS = PARTNER_INFO.filter((info) => info.holdsBans).map((info) => info.partner);

interface PartnerStatus {
  partner: Partner;
  status: HitStatus;
}

/** What a partner's answer says by itself: it knows the person, it does not, or it did not answer. */
function statusOfAnswer(answer: { answered: true; record: unknown } | { answered: false }): HitStatus {
  return !answer.answered ? 'UNAVAILABLE' : answer.record ? 'HIT' : 'NO_HIT';
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

  /**
   * The location an activeBans question may be asked at: the caller's, while their budget of
   * location checks for this subject lasts. Past it the bans are still answered, as they must be
   * for an officer at the scene, but without `violatedAt`, and a RATE_LIMITED error says why
   * (HTTP 200, a partial answer).
   */
  async function admitLocation(ctx: GatewayContext, bsn: string, location: { lat: number; lon: number } | null) {
    // Only `violatedAt` needs it: unasked, the officer's position goes to no node and uses up no check.
    if (!location || !ctx.state.selected.has('Ban.violatedAt')) return { location: null, withheld: [] };
    const { caller, subjectRef } = ctx.state;
    const retryAfter = await deps.locationChecks.takeAll([`${caller!.iss}|${caller!.sub}|${subjectRef(bsn)}`]);
    if (retryAfter === null) return { location, withheld: [] };
    ctx.state.partialErrors.push(locationLeftOut(retryAfter));
    return { location: null, withheld: ['Ban.violatedAt'] };
  }

  /** Asks the partners about one person; notes who provided data and who did not answer. */
  async function ask(operation: string, ctx: GatewayContext, bsn: string, partners: readonly Partner[], selection: string, args: PersonArgs): Promise<Asked> {
    const { state } = ctx;
    const span = tracer.startSpan(operation, {}, trace.setSpan(ROOT_CONTEXT, state.span));
    const startTime = clock.now();
    state.nodeCalls ??= { caller: state.caller!, deadline: state.deadline, span: state.span, subjectRef: state.subjectRef, reached: state.reached };
    let answers: PartnerAnswer[];
    try {
      answers = await fetcher.fetch(bsn, partners, selection, args, state.nodeCalls);
    } finally {
      span.end();
    }
    for (const answer of answers) {
      if (answer.answered) {
        if (answer.record) state.providers.add(answer.partner);
        continue;
      }
      state.partialErrors.push(
        sohError('PARTNER_UNAVAILABLE', `${answer.partner} did not answer in time or refused; its status is UNAVAILABLE.`, {
          partner: answer.partner,
        }),
      );
    }
    return { operation, answers, span, startTime, endTime: clock.now() };
  }

  /**
   * One processing record per data subject of the question (DESIGN §7), each with the status per
   * partner that the answer gives: a record about the counterpart of a contact-ban check says
   * what was found about the two of them, not whether the partner knows the subject.
   */
  function recordProcessing(ctx: GatewayContext, asked: Asked, bsns: string[], partners: readonly PartnerStatus[], statusCode: StatusCode): void {
    const { state } = ctx;
    const span = asked.span.spanContext();
    const outcome = Object.fromEntries(partners.map(({ partner, status }) => [partner, status]));
    for (const bsn of bsns) {
      state.processing.push(
        gatewayProcessingRecord(state, {
          span,
          parentSpanId: state.span.spanContext().spanId,
          name: asked.operation,
          startTime: asked.startTime,
          endTime: asked.endTime,
          statusCode,
          activity: state.purpose!.processingActivity,
          subjectRef: state.subjectRef(bsn),
          attributes: {
            'soh.partners': outcome,
            // What this request ran and was released: not a field skipped, in an operation that did not run, or held back.
            'soh.fields': state.operation.fields.filter((field) => state.selected.has(field) && !asked.withheld?.includes(field)),
            ...(asked.withheld?.length ? { 'soh.withheld': asked.withheld } : {}),
          },
        }),
      );
    }
  }

  /**
   * What a resolver makes of its answers, with the processing records of its subjects written
   * whatever happens (DESIGN §7: one per subject per action): with the statuses it decided, or,
   * should it fail, with what each partner answered and status ERROR.
   */
  function settle<T extends { partners: readonly PartnerStatus[] }>(ctx: GatewayContext, asked: Asked, bsns: string[], decide: () => T): T {
    let decided: T | undefined;
    try {
      return (decided = decide());
    } finally {
      const partners = decided?.partners ?? asked.answers.map((answer) => ({ partner: answer.partner, status: statusOfAnswer(answer) }));
      recordProcessing(ctx, asked, bsns, partners, decided ? 'UNSET' : 'ERROR');
    }
  }

  /** The instant asked about: `at`, or else the request's own time, the same for all its root fields. */
  function atOrNow(ctx: GatewayContext, at: string | null | undefined): { iso: string; ms: number } {
    const ms = at ? Date.parse(at) : ctx.state.startTime;
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
      const asked = await ask('hitCheck', ctx, bsn, PARTNERS, hitCheckSelection(ctx.state.selected), { at: atOrNow(ctx, null).iso });
      return settle(ctx, asked, [bsn], () => {
        const partners = asked.answers.map((answer) => {
          const status = statusOfAnswer(answer);
          recordPartnerStatus(ctx.state, answer.partner, status);
          return { partner: answer.partner, status, contact: answer.answered ? (answer.record?.contact ?? null) : null };
        });
        const complete = partners.every((p) => p.status !== 'UNAVAILABLE');
        return { subjectRef: ctx.state.subjectRef(bsn), complete, anyHit: triState(partners.some((p) => p.status === 'HIT'), complete), partners };
      });
    },

    async activeBans(
      _root: unknown,
      args: { subject: { bsn: string }; at?: string | null; location?: { lat: number; lon: number } | null },
      ctx: GatewayContext,
    ) {
      const bsn = args.subject.bsn;
      // Its range was checked before execution (subject-admission.ts).
      const { location, withheld } = await admitLocation(ctx, bsn, args.location ?? null);
      const at = atOrNow(ctx, args.at);
      const asked: Asked = {
        ...(await ask('activeBans', ctx, bsn, BAN_PARTNERS, activeBansSelection(ctx.state.selected), { at: at.iso, atInPast: at.ms < ctx.state.startTime, location })),
        withheld,
      };
      return settle(ctx, asked, [bsn], () => {
        const bans = mergeBans(copies(asked.answers), at.ms, ctx.state.subjectRef).map(({ protectsCounterpart: _p, ...ban }) => ({
          ...ban,
          violatedAt: location ? (ban.violatedAt ?? null) : null,
        }));
        const partners = banPartners(asked.answers, ctx, (answer) => (bans.some((ban) => ban.reportedBy.includes(answer.partner)) ? 'HIT' : 'NO_HIT'));
        const complete = partners.every((p) => p.status !== 'UNAVAILABLE');
        return { subjectRef: ctx.state.subjectRef(bsn), complete, underActiveBan: triState(bans.length > 0, complete), bans, partners };
      });
    },

    async contactBanned(
      _root: unknown,
      args: { subject: { bsn: string }; counterpart: { bsn: string }; at?: string | null },
      ctx: GatewayContext,
    ) {
      const bsn = args.subject.bsn;
      const counterpartBsn = args.counterpart.bsn;
      const at = atOrNow(ctx, args.at);
      const asked = await ask('contactBanned', ctx, bsn, BAN_PARTNERS, contactBannedSelection(), {
        at: at.iso,
        atInPast: at.ms < ctx.state.startTime,
        counterpartBsn,
      });
      return settle(ctx, asked, [bsn, counterpartBsn], () => {
        const matching = mergeBans(copies(asked.answers), at.ms, ctx.state.subjectRef).filter(
          (ban) => (ban.kind === 'CONTACT' || ban.kind === 'HOUSE') && ban.protectsCounterpart,
        );
        const partners = banPartners(asked.answers, ctx, (answer) => (matching.some((ban) => ban.reportedBy.includes(answer.partner)) ? 'HIT' : 'NO_HIT'));
        const complete = partners.every((p) => p.status !== 'UNAVAILABLE');
        return { complete, banned: triState(matching.length > 0, complete), banIds: matching.map((ban) => ban.id), partners };
      });
    },
  };
}
