import type { RootCall } from '../../lib/graphql/root-fields.ts';

/** Where each public root field names a person by BSN: the argument, then its input field. */
const SUBJECT_PATHS: Record<string, readonly (readonly [argument: string, inputField: string])[]> = {
  hitCheck: [['subject', 'bsn']],
  activeBans: [['subject', 'bsn']],
  contactBanned: [
    ['subject', 'bsn'],
    ['counterpart', 'bsn'],
  ],
  accessLog: [['filter', 'subjectBsn']],
};

/** A person one root field names: `bsn` as sent, checked by nobody yet. */
export interface NamedSubject {
  field: string;
  /** `subject`, `counterpart`, `filter.subjectBsn`: how a message names it without its value. */
  argument: string;
  bsn: unknown;
}

/** Every BSN the calls name, with the field and argument that name it. */
export function namedSubjects(calls: RootCall[]): NamedSubject[] {
  return calls.flatMap(({ field, args }) =>
    (SUBJECT_PATHS[field] ?? []).map(([argument, inputField]) => ({
      field,
      argument: inputField === 'bsn' ? argument : `${argument}.${inputField}`,
      bsn: (args[argument] as Record<string, unknown> | null | undefined)?.[inputField],
    })),
  );
}
