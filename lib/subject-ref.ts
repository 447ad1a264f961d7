import { createHmac } from 'node:crypto';

/**
 * Subject references (DESIGN §3): HMAC-SHA-256 of the BSN under a key only the gateway holds,
 * base64url, first 22 characters. Stable under one key, meaningless without it.
 */
export type SubjectRefFn = (bsn: string) => string;

/** What a subject reference looks like; a BSN never does (nine digits are not 22 characters). */
export function isSubjectRef(value: string): boolean {
  return SUBJECT_REF.test(value);
}

const SUBJECT_REF = /^[A-Za-z0-9_-]{22}$/;

export function subjectRefs(key: Buffer): SubjectRefFn {
  if (key.length < 32) throw new RangeError('the subject-reference key must be at least 32 bytes');
  return (bsn) => createHmac('sha256', key).update(bsn).digest('base64url').slice(0, 22);
}

/** The same function computing each BSN's reference once: for one request, never kept beyond it. */
export function memoised(subjectRef: SubjectRefFn): SubjectRefFn {
  const refs = new Map<string, string>();
  return (bsn) => {
    let ref = refs.get(bsn);
    if (ref === undefined) refs.set(bsn, (ref = subjectRef(bsn)));
    return ref;
  };
}
