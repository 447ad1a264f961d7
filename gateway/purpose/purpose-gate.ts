import { mayHoldBsn } from '../../lib/bsn.ts';
import { sohError } from '../../lib/errors.ts';
import { type Purpose, orgMatches, purposeId } from '../../lib/policy/load.ts';
import type { Caller } from '../auth/caller-token.ts';

/**
 * DESIGN §6 step 1, before anything runs: the token's purpose must exist, be allowed for the
 * caller's organisation and role, and carry a well-formed case_ref where the purpose needs one.
 * Returns the purpose and the rule that allowed it.
 */
export function admitPurpose(caller: Caller, purposes: ReadonlyMap<string, Purpose>): { purpose: Purpose; rule: string } {
  const purpose = purposes.get(caller.purpose);
  // The claim is the token's own text, echoed only as the records would name it.
  if (!purpose) throw forbidden('unknown purpose', recordablePurpose(caller.purpose), 'The token names an unknown purpose.');
  const index = purpose.allow.findIndex(
    (entry) => entry.orgs.some((pattern) => orgMatches(pattern, caller.org)) && entry.roles.some((role) => caller.roles.includes(role)),
  );
  if (index < 0) throw forbidden(`${purpose.ref}: allow`, purpose.id, `Purpose ${purpose.id} is not allowed for this organisation and role.`);
  if (purpose.requireCaseRef) {
    if (!caller.caseRef && !caller.caseRefMalformed) throw forbidden(`${purpose.ref}: requireCaseRef`, purpose.id, `Purpose ${purpose.id} requires a case_ref claim.`);
    if (!caller.caseRef) throw forbidden('case_ref format', purpose.id, 'The case_ref claim is malformed.');
  }
  return { purpose, rule: `${purpose.ref}: allow[${index}]` };
}

/**
 * A token's purpose claim as audit records and spans name it: any text up to 128 characters, it
 * is kept only when it could be a purpose id and holds no BSN-like digit run, else `unknown`.
 */
export function recordablePurpose(claim: string): string {
  return purposeId.safeParse(claim).success && !mayHoldBsn(claim) ? claim : 'unknown';
}

function forbidden(rule: string, purpose: string, message: string) {
  return sohError('FORBIDDEN', message, { purpose, reason: rule });
}
