import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { completeBsn, isValidBsn, mayHoldBsn } from '../lib/bsn.ts';
import { canonicalJson } from '../lib/canonical-json.ts';
import { memoised, subjectRefs } from '../lib/subject-ref.ts';
import { ALL_BSNS, PERSONS, RFC8785_EXAMPLES } from './support/fixtures.ts';

/** The 11-check of DESIGN §3, written out independently of lib/bsn.ts. */
function elfproef(digits: string): boolean {
  const d = [...digits].map(Number);
  const sum = 9 * d[0]! + 8 * d[1]! + 7 * d[2]! + 6 * d[3]! + 5 * d[4]! + 4 * d[5]! + 3 * d[6]! + 2 * d[7]! - d[8]!;
  return sum % 11 === 0;
}

describe('text that may hold a BSN', () => {
  it.each(['123456782', 'lookup-123456782', 'p-1234-56-782', 'Q_1234_56_782', '1234.56.782', 'x 1234 5678 2', '12345678'])('%j may', (text) => {
    expect(mayHoldBsn(text)).toBe(true);
  });
  it.each(['vt-hit-check', 'PoliceBanCheck', 'v1-2-3', 'a1234567'])('%j may not', (text) => {
    expect(mayHoldBsn(text)).toBe(false);
  });
});

describe('BSN 11-check', () => {
  it.each([
    ['111222333', '9+8+7+12+10+8+9+6−3 = 66'],
    ['123456782', 'the DESIGN §3 vector: 154 = 14·11'],
    ['999999990', '9·44 − 0 = 396 = 36·11'],
    [PERSONS.subject, 'the fixture subject'],
  ])('accepts %s (%s)', (bsn) => {
    expect(isValidBsn(bsn)).toBe(true);
  });

  it.each([
    ['999998620', 'the DESIGN §3 invalid vector'],
    ['123456781', 'a wrong check digit'],
    ['111222334', 'a wrong check digit'],
    ['000000000', 'all zeros, which passes the arithmetic'],
    ['12345678', 'eight digits'],
    ['1234567820', 'ten digits'],
    ['0123456782', 'ten digits with a leading zero'],
    ['12345678a', 'a letter'],
    ['ABCDEFGHI', 'letters only'],
    [' 123456782', 'a leading space'],
    ['123456782 ', 'a trailing space'],
    ['123456782\n', 'a trailing newline'],
    ['123 456 782', 'spaces inside'],
    ['12345678.2', 'a dot'],
    ['-23456782', 'a sign'],
    ['', 'the empty string'],
    ['１２３４５６７８２', 'full-width digits'],
    ['١٢٣٤٥٦٧٨٢', 'Arabic-Indic digits'],
  ])('rejects %j (%s)', (bsn) => {
    expect(isValidBsn(bsn)).toBe(false);
  });

  it('agrees with the written-out 11-check on a sweep of nine-digit numbers', () => {
    let valid = 0;
    for (let n = 100_000_000; n < 100_000_000 + 11_000; n++) {
      const digits = String(n);
      expect(isValidBsn(digits), digits).toBe(elfproef(digits));
      if (elfproef(digits)) valid++;
    }
    // About one in eleven nine-digit strings passes.
    expect(valid).toBeGreaterThan(900);
    expect(valid).toBeLessThan(1100);
  });

  it('holds for every fixture BSN, and the fixtures are distinct', () => {
    for (const bsn of ALL_BSNS) expect(isValidBsn(bsn), bsn).toBe(true);
    expect(new Set(ALL_BSNS).size).toBe(ALL_BSNS.length);
  });
});

describe('completeBsn', () => {
  it('appends the check digit that makes eight digits a valid BSN', () => {
    expect(completeBsn('12345678')).toBe('123456782');
    expect(completeBsn('11122233')).toBe('111222333');
  });

  it('returns a valid BSN starting with the given digits, or null when no check digit fits', () => {
    let nulls = 0;
    for (let n = 10_000_000; n < 10_000_000 + 2_000; n++) {
      const prefix = String(n);
      const bsn = completeBsn(prefix);
      const anyFits = [...'0123456789'].some((last) => elfproef(prefix + last));
      if (bsn === null) {
        nulls++;
        expect(anyFits, prefix).toBe(false);
      } else {
        expect(bsn.startsWith(prefix)).toBe(true);
        expect(bsn).toHaveLength(9);
        expect(isValidBsn(bsn)).toBe(true);
      }
    }
    // The check digit must be 0–9, so about one prefix in eleven (remainder 10) has none.
    expect(nulls).toBeGreaterThan(100);
  });

  it('never completes to all zeros', () => {
    expect(completeBsn('00000000')).toBeNull();
  });
});

describe('subject references', () => {
  const key = randomBytes(32);
  const ref = subjectRefs(key);

  it('are HMAC-SHA-256 of the BSN under the key, base64url, first 22 characters', () => {
    const expected = createHmac('sha256', key).update(PERSONS.subject).digest('base64url').slice(0, 22);
    expect(ref(PERSONS.subject)).toBe(expected);
    expect(ref(PERSONS.subject)).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('give the same BSN the same reference under one key', () => {
    expect(ref(PERSONS.victim)).toBe(ref(PERSONS.victim));
    expect(subjectRefs(Buffer.from(key))(PERSONS.victim)).toBe(ref(PERSONS.victim));
  });

  it('memoised for a request, are the same references, each computed once', () => {
    const computed: string[] = [];
    const refs = memoised((bsn) => (computed.push(bsn), ref(bsn)));
    expect([refs(PERSONS.subject), refs(PERSONS.victim), refs(PERSONS.subject)]).toEqual([ref(PERSONS.subject), ref(PERSONS.victim), ref(PERSONS.subject)]);
    expect(computed).toEqual([PERSONS.subject, PERSONS.victim]);
  });

  it('give different BSNs different references', () => {
    const refs = ALL_BSNS.map(ref);
    expect(new Set(refs).size).toBe(ALL_BSNS.length);
    // Neighbouring valid BSNs too.
    const neighbours = ['123456782', '123456794', '123456800'].filter(isValidBsn);
    expect(neighbours.length).toBeGreaterThan(1);
    expect(new Set(neighbours.map(ref)).size).toBe(neighbours.length);
  });

  it('differ under another key', () => {
    expect(subjectRefs(randomBytes(32))(PERSONS.subject)).not.toBe(ref(PERSONS.subject));
  });

  it('never contain the BSN, nor a long run of its digits', () => {
    for (let n = 0; n < 2_000; n++) {
      const bsn = completeBsn(String(20_000_000 + n * 37));
      if (!bsn) continue;
      const value = ref(bsn);
      expect(value).not.toContain(bsn);
      for (let i = 0; i + 5 <= 9; i++) expect(value, `${bsn} → ${value}`).not.toContain(bsn.slice(i, i + 5));
    }
  });

  it('refuse a key shorter than 32 bytes', () => {
    expect(() => subjectRefs(randomBytes(16))).toThrow(RangeError);
  });
});

/** A float64 from its IEEE 754 bits, as RFC 8785 Appendix B lists them. */
function fromBits(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

describe('canonical JSON (RFC 8785)', () => {
  it.each(RFC8785_EXAMPLES)('canonicalises the $section example', ({ input, canonical }) => {
    expect(canonicalJson(JSON.parse(input))).toBe(canonical);
  });

  it('sorts keys by UTF-16 code units (§3.2.3), whatever the insertion order', () => {
    const output = canonicalJson(JSON.parse(RFC8785_EXAMPLES[1]!.input));
    // U+1F600 (surrogates D83D DE00) sorts before U+FB33 by code units, though after it by code point.
    expect(output.indexOf('😀')).toBeLessThan(output.indexOf('\ufb33'));
  });

  it('sorts nested objects too, keeps array order and emits no whitespace', () => {
    expect(canonicalJson({ b: [3, { z: 1, a: 2 }, 1], a: { d: null, c: 'x y' } })).toBe('{"a":{"c":"x y","d":null},"b":[3,{"a":2,"z":1},1]}');
    expect(canonicalJson({ b: 1, a: 2 })).toBe(canonicalJson({ a: 2, b: 1 }));
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
  });

  it('hashes a member named "__proto__" like any other', () => {
    expect(canonicalJson(JSON.parse('{"__proto__":"x","a":1}'))).toBe('{"__proto__":"x","a":1}');
  });

  it('sorts integer-like keys as text, though JavaScript keeps them in numeric order', () => {
    expect(canonicalJson({ a: 3, 9: 2, 10: 1 })).toBe('{"10":1,"9":2,"a":3}');
    expect(canonicalJson([{ b: { 2: true, 10: false } }])).toBe('[{"b":{"10":false,"2":true}}]');
  });

  it('leaves out undefined members and refuses values JSON has no form for', () => {
    expect(canonicalJson({ b: undefined, a: 1 })).toBe('{"a":1}');
    expect(() => canonicalJson({ a: () => 1 })).toThrow(TypeError);
    expect(() => canonicalJson([undefined])).toThrow(TypeError);
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
  });

  it.each([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ])('formats the float64 0x%s as %s (Appendix B)', (bits, expected) => {
    expect(canonicalJson(fromBits(bits))).toBe(expected);
    expect(canonicalJson({ n: fromBits(bits) })).toBe(`{"n":${expected}}`);
  });

  it.each([
    ['NaN', '7fffffffffffffff'],
    ['Infinity', '7ff0000000000000'],
    ['-Infinity', 'fff0000000000000'],
  ])('refuses %s', (_name, bits) => {
    expect(() => canonicalJson(fromBits(bits))).toThrow();
    expect(() => canonicalJson({ n: fromBits(bits) })).toThrow();
  });

  it('escapes only what JSON requires, in lower-case hex, and leaves other Unicode as is', () => {
    expect(canonicalJson('\u0000\u001f\u007f\b\f\t "\\/é')).toBe('"\\u0000\\u001f\u007f\\b\\f\\t \\"\\\\/é"');
  });
});
