import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { parseCaches } from '../gateway/parse-cache.ts';

// DESIGN §2: the gateway holds no person data in caches. Yoga keeps parsed documents by their text.
describe("the gateway's parse caches", () => {
  const cached = (text: string) => {
    const caches = parseCaches(8);
    caches.documentCache.set(text, parse(text));
    return caches.documentCache.get(text) !== undefined;
  };

  it('keep a document whose values all come in variables', () => {
    expect(cached('query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { anyHit } }')).toBe(true);
  });

  it.each([
    ['a BSN inline', '{ hitCheck(subject: { bsn: "123456782" }) { anyHit } }'],
    ['a location inline', 'query B($bsn: String!) { activeBans(subject: { bsn: $bsn }, location: { lat: 51.92, lon: 4 }) { complete } }'],
    ['a BSN as a default value', 'query Hit($bsn: String! = "123456782") { hitCheck(subject: { bsn: $bsn }) { anyHit } }'],
    ['a comment (which may hold anything)', 'query Hit($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { anyHit } } # 1234 567 82 at 52.37,4.89'],
    ['a BSN in an operation name', 'query Check_123456782($bsn: String!) { hitCheck(subject: { bsn: $bsn }) { anyHit } }'],
  ])('keep no document with %s: it is parsed for its own request only', (_name, text) => {
    expect(cached(text)).toBe(false);
  });

  it('keep no text that does not parse (its error holds the whole text)', () => {
    const caches = parseCaches(8);
    const text = '{ hitCheck(subject: { bsn: "123456782" ';
    caches.errorCache.set(text, new Error('Syntax Error'));
    expect(caches.errorCache.get(text)).toBeUndefined();
  });
});
