/**
 * RFC 8785 JSON Canonicalization Scheme for the values audit records hold: object keys sorted by
 * UTF-16 code units (§3.2.3), no insignificant whitespace, and numbers and strings serialised as
 * ECMAScript's JSON.stringify does (§3.2.2.3, §3.2.2.2).
 */
export function canonicalJson(value: unknown): string {
  try {
    // JSON.stringify writes an object's keys in insertion order, so a copy with its keys inserted
    // in sorted order comes out canonical, at native speed.
    return JSON.stringify(sortedCopy(value));
  } catch (error) {
    if (error instanceof IndexLikeKey) return canonicalText(value);
    throw error;
  }
}

/** JavaScript puts integer-like keys ("1", "10") before all others whatever the insertion order. */
class IndexLikeKey extends Error {}
const INDEX_LIKE = /^(?:0|[1-9]\d*)$/;

function sortedCopy(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return leaf(value);
  if (Array.isArray(value)) return value.map(sortedCopy);
  // No prototype: a member named "__proto__" would otherwise set it, and go unhashed.
  const copy: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value).sort()) {
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined) continue;
    if (INDEX_LIKE.test(key)) throw new IndexLikeKey();
    copy[key] = sortedCopy(member);
  }
  return copy;
}

/** What JSON.stringify would silently drop or rewrite has no canonical form. */
function leaf(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('RFC 8785 forbids non-finite numbers');
      return value;
    default:
      if (value === null) return value;
      throw new TypeError(`cannot canonicalise a ${typeof value}`);
  }
}

/** The same output written out member by member, for objects with integer-like keys. */
function canonicalText(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(leaf(value));
  if (Array.isArray(value)) return `[${value.map(canonicalText).join(',')}]`;
  const members = Object.keys(value)
    .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalText((value as Record<string, unknown>)[key])}`);
  return `{${members.join(',')}}`;
}
