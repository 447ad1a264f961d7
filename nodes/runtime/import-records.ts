import { z } from 'zod';
import { type Ban, banLine, personLine } from '../../lib/records.ts';
import type { NodeDefinition, OwnRecord } from './definition.ts';

/** A validated import line (DESIGN §10). */
export type ImportRecord = z.infer<typeof personLine> | (Ban & { type: 'ban' }) | OwnRecord;

export interface LineProblem {
  line: number;
  reason: string;
}

/** Builds the validator for one node's import lines: `person`, `ban` where accepted, and its own types. */
export function importLineParser(definition: NodeDefinition): (value: unknown) => { record?: ImportRecord; reason?: string } {
  const schemas = new Map<string, z.ZodType<ImportRecord>>([['person', personLine]]);
  if (definition.acceptsBans) schemas.set('ban', banLine as z.ZodType<ImportRecord>);
  for (const [type, schema] of Object.entries(definition.ownRecordTypes)) schemas.set(type, schema);
  const accepted = [...schemas.keys()].join(', ');
  return (value) => {
    const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
    if (typeof type !== 'string') return { reason: `missing "type" (accepted here: ${accepted})` };
    const schema = schemas.get(type);
    if (!schema) return { reason: `unknown record type ${shown(type)} for node ${definition.id} (accepted here: ${accepted})` };
    // The schema first: its strict shapes bound how deep the text check below may walk (a line
    // nested a hundred thousand levels deep would overflow the stack before being refused).
    const parsed = schema.safeParse(value);
    if (parsed.success) {
      const unstorable = unstorableText(parsed.data, []);
      if (unstorable) return { reason: `${type}: ${pathOf(unstorable)}: holds a NUL character or an unpaired surrogate, which not every store can keep` };
      return { record: parsed.data };
    }
    const [issue] = parsed.error.issues;
    const where = issue?.path.length ? `${pathOf(issue.path)}: ` : '';
    // zod's own message quotes the unknown keys, which are the line's content.
    const message = issue?.code === 'unrecognized_keys' ? `unrecognized key ${issue.keys.map(shown).join(', ')}` : (issue?.message ?? 'invalid');
    return { reason: `${type}: ${where}${message}` };
  };
}

/**
 * Text from the line, quoted only when it is a plain name (letters, `_`, `-`): a value or key
 * with digits in it may be a BSN, and a reason never repeats one.
 */
function shown(text: string): string {
  return /^[A-Za-z_-]{1,64}$/.test(text) ? `"${text}"` : '(not shown: not a plain name)';
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((step) => (typeof step === 'number' ? String(step) : typeof step === 'string' && /^[A-Za-z_-]{1,64}$/.test(step) ? step : '…')).join('.');
}

/**
 * Where a value holds text that PostgreSQL refuses (NUL, an unpaired UTF-16 surrogate) and SQLite
 * would keep: refused for both, so that the two stores hold the same data.
 */
const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function unstorableText(value: unknown, path: (string | number)[]): (string | number)[] | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : null;
  if (typeof value !== 'object' || value === null) return null;
  for (const [key, item] of Object.entries(value)) {
    const found = unstorableText(item, [...path, Array.isArray(value) ? Number(key) : key]);
    if (found) return found;
  }
  return null;
}

/**
 * Parses a whole NDJSON text. Every bad line is reported with its number and reason; the caller
 * loads nothing unless `problems` is empty (import is all-or-nothing). Reasons never quote the
 * line's content, which may hold a BSN.
 */
export function parseNdjson(text: string, definition: NodeDefinition): { records: ImportRecord[]; problems: LineProblem[] } {
  const parse = importLineParser(definition);
  const records: ImportRecord[] = [];
  const problems: LineProblem[] = [];
  // An upsert applies lines in order: a record given twice would be the last copy alone, the
  // earlier one dropped without a word. Which was meant only the file's author knows.
  const firstLineOf = new Map<string, number>();
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      problems.push({ line: index + 1, reason: 'not valid JSON' });
      return;
    }
    const { record, reason } = parse(value);
    if (!record) return void problems.push({ line: index + 1, reason: reason! });
    const key = record.type === 'person' ? `person ${record.bsn}` : `${record.type} ${(record as { id: string }).id}`;
    const first = firstLineOf.get(key);
    if (first !== undefined) {
      const by = record.type === 'person' ? 'bsn' : 'id';
      return void problems.push({ line: index + 1, reason: `${record.type}: the same ${by} as line ${first} (each record once per file)` });
    }
    firstLineOf.set(key, index + 1);
    records.push(record);
  });
  return { records, problems };
}
