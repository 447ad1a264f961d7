import { PARTNERS, type Partner } from '../../lib/partners.ts';
import { banActiveAt } from '../../lib/records.ts';
import type { SubjectRefFn } from '../../lib/subject-ref.ts';
import type { NodeBan } from '../federation/person-fetcher.ts';

export interface BanCopy {
  partner: Partner;
  ban: NodeBan;
}

/** The authority whose copy is authoritative: politie for the mayor's house ban, OM for court and prosecutor bans. */
function imposingPartner(ban: NodeBan): Partner {
  return ban.kind === 'HOUSE' ? 'POLITIE' : 'OM';
}

/**
 * Merges the copies of each chain-wide ban id (DESIGN §5): a ban is listed when any copy is
 * active at `at`; `reportedBy` names the partners whose copy is active; the other fields come
 * from the imposing authority's copy when it is one of those, else from another active copy. A
 * copy that is not active at `at` (ended, revoked) describes no ban in force: its end date,
 * area, `violatedAt` or protected persons would contradict the ban listed. Protected persons are
 * those of every active copy, and leave as subject references.
 */
export function mergeBans(copies: readonly BanCopy[], at: number, subjectRef: SubjectRefFn) {
  const byId = new Map<string, BanCopy[]>();
  for (const copy of copies) {
    const group = byId.get(copy.ban.id);
    if (group) group.push(copy);
    else byId.set(copy.ban.id, [copy]);
  }
  const merged = [];
  for (const [id, group] of byId) {
    const active = group.filter((copy) => banActiveAt(copy.ban, at));
    if (active.length === 0) continue;
    const source = active.find((copy) => copy.partner === imposingPartner(copy.ban)) ?? active[0]!;
    const { protectedBsns: _protected, status: _status, statusChangedAt: _changed, protectsCounterpart: _protects, ...fields } = source.ban;
    merged.push({
      ...fields,
      id,
      reportedBy: PARTNERS.filter((partner) => active.some((copy) => copy.partner === partner)),
      // Every active copy's: a person one copy protects is protected, as contactBanned says.
      protectedPersonRefs: [...new Set(active.flatMap((copy) => copy.ban.protectedBsns ?? []))].map(subjectRef),
      // Any active copy that matches the counterpart counts: the nodes match, not the gateway.
      protectsCounterpart: active.some((copy) => copy.ban.protectsCounterpart === true),
    });
  }
  return merged.sort((a, b) => a.id.localeCompare(b.id));
}
