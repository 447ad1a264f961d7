/**
 * Burgerservicenummer validation. The BSN is exactly nine digits that pass the "elfproef":
 * 9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 (mod 11), and 000000000 is never issued.
 */
const NINE_DIGITS = /^\d{9}$/;

/**
 * Whether text a caller chose (a name, a comment) may hold a BSN: eight digits or more in a row,
 * once the separators a BSN is often written with are left out (1234.56.782, 1234-56-782, and
 * the underscores a GraphQL name must use instead). Such text is kept nowhere that outlives the
 * request (caches, audit records).
 */
export function mayHoldBsn(text: string): boolean {
  return /\d{8,}/.test(text.replace(/[\s._-]+/g, ''));
}

export function isValidBsn(value: string): boolean {
  if (!NINE_DIGITS.test(value) || value === '000000000') return false;
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += (9 - i) * (value.charCodeAt(i) - 48);
  sum -= value.charCodeAt(8) - 48;
  return sum % 11 === 0;
}

/** Completes eight digits with the check digit that makes a valid BSN, or null when none exists. */
export function completeBsn(firstEight: string): string | null {
  for (let last = 0; last <= 9; last++) {
    const candidate = firstEight + String(last);
    if (isValidBsn(candidate)) return candidate;
  }
  return null;
}
