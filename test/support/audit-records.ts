import type { NodeAccessRecord } from '../../lib/audit/records.ts';

/** A node's access record for one call, numbered so that each has its own trace id and time. */
export function nodeAccessRecord(index: number): NodeAccessRecord {
  return {
    type: 'access',
    component: 'politie',
    trace_id: index.toString(16).padStart(32, '0'),
    time: new Date(Date.UTC(2026, 11, 1, 12, 0, index)).toISOString(),
    requester: { org: 'veilig-thuis', sub: 'medewerker-1', roles: ['vt-medewerker'] },
    purpose: 'vt-hit-check',
    decision: 'ALLOW',
    fieldsReleased: ['Query.records'],
    subjects: 1,
    hits: 0,
  };
}
