import { PARTNER_INFO } from '../lib/partners.ts';

/**
 * What the load generator sends. The baselines cannot compute the public API, so all targets are
 * also measured on the same underlying work: one request that fetches each of the four nodes'
 * record of one person (the stitched Person), selecting what a Veilig Thuis hit check needs.
 * Our gateway does that work behind `hitCheck`, with authentication, purpose binding and audit on top.
 */
export const NODE_SELECTION = 'contact { organisation unit phone email }';

/** The stitched Person as the baselines serve it: each node's `records` under a prefixed root field. */
export const PERSON_QUERY = `query Person($bsn: String!, $ref: String!, $at: DateTime!) {
${PARTNER_INFO.map((info) => `  ${info.personField}: ${info.personField}_records(bsns: [$bsn], subjectRefs: [$ref], at: $at) { ${NODE_SELECTION} }`).join('\n')}
}`;

/** The one-node request the direct fan-out sends to each node. */
export const NODE_QUERY = `query Records($bsns: [String!]!, $refs: [String!]!, $at: DateTime!) { records(bsns: $bsns, subjectRefs: $refs, at: $at) { ${NODE_SELECTION} } }`;

export const HIT_CHECK_QUERY = `query HitCheck($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { subjectRef complete anyHit partners { partner status contact { organisation unit phone email } } } }`;

export const ACTIVE_BANS_QUERY = `query ActiveBans($bsn: String!) { activeBans(subject: { bsn: $bsn }) { complete underActiveBan bans { id kind legalBasis imposedBy reportedBy validFrom validUntil conditions area { description municipality } electronicMonitoring victimDevice notify { organisation phone } } partners { partner status } } }`;

export type Workload = 'person' | 'hitCheck' | 'activeBans';

/** A subject the load generator may ask about: known to some node, or to none. */
export interface Subject {
  bsn: string;
  ref: string;
}

export function requestBody(workload: Workload, subject: Subject, at: string): string {
  switch (workload) {
    case 'person':
      return JSON.stringify({ query: PERSON_QUERY, operationName: 'Person', variables: { bsn: subject.bsn, ref: subject.ref, at } });
    case 'hitCheck':
      return JSON.stringify({ query: HIT_CHECK_QUERY, operationName: 'HitCheck', variables: { bsn: subject.bsn } });
    case 'activeBans':
      return JSON.stringify({ query: ACTIVE_BANS_QUERY, operationName: 'ActiveBans', variables: { bsn: subject.bsn } });
  }
}

/**
 * Whether an answer is a failure: not 200, GraphQL errors, or our gateway's `complete: false`
 * (a node it asked did not answer, which it reports as a partner UNAVAILABLE where the baselines
 * answer with errors). A failure is no measured request: answered fast, it would flatter a target.
 */
export function failedAnswer(status: number, body: string): boolean {
  return status !== 200 || body.includes('"errors"') || body.includes('"complete":false');
}

/**
 * Whether `data` answers a subject some node knows as a working target must: the stitched Person
 * with at least one node's record (a list per node from a stitching gateway, the record itself
 * from the direct fan-out), a hit check complete and with a hit, a ban check complete (a known
 * subject need not be under a ban). A target whose node calls fail silently answers with nothing.
 */
export function answersKnownSubject(workload: Workload, data: Record<string, unknown>): boolean {
  switch (workload) {
    case 'person':
      return PARTNER_INFO.some(({ personField }) => [data[personField]].flat().some((record) => record != null));
    case 'hitCheck': {
      const check = data['hitCheck'] as { complete?: boolean; anyHit?: boolean | null } | null;
      return check?.complete === true && check.anyHit === true;
    }
    case 'activeBans':
      return (data['activeBans'] as { complete?: boolean } | null)?.complete === true;
  }
}
