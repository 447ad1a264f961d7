/**
 * RFC 8785 JSON Canonicalization Scheme for the values audit records hold: object keys sorted by
 * UTF-16 code units (§3.2.3), no insignificant whitespace, and numbers and strings serialised as
 * ECMAScript's JSON.stringify does (§3.2.2.3, §3.2.2.2).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new TypeError('RFC 8785 forbids non-finite numbers');
    }
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`cannot canonicalise a ${typeof value}`);
    return text;
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value)
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .sort();
  const members = keys.map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
  return `{${members.join(',')}}`;
}
