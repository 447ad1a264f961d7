import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../canonical-json.ts';

/** DESIGN §7: the first record's prevHash. */
export const ZERO_HASH = '0'.repeat(64);

export interface Chained {
  seq: number;
  prevHash: string;
  hash: string;
}

export type ChainedRecord = Chained & Record<string, unknown>;

/** hash = SHA-256 over the RFC 8785 canonical JSON of the record without `hash`. */
export function recordHash(record: Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = record;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

export function chain<T extends Record<string, unknown>>(body: T, previous: { seq: number; hash: string }): T & Chained {
  const linked = { ...body, seq: previous.seq + 1, prevHash: previous.hash };
  return { ...linked, hash: recordHash(linked) };
}

/** The signed chain head: truncating the log leaves a head that points past its end. */
export interface SignedHead {
  seq: number;
  hash: string;
  kid: string;
  signature: string;
}

const headMessage = (seq: number, hash: string) => Buffer.from(`soh-audit-head\n${seq}\n${hash}`);

export function signHead(seq: number, hash: string, key: { kid: string; privateKey: KeyObject }): SignedHead {
  return { seq, hash, kid: key.kid, signature: sign(null, headMessage(seq, hash), key.privateKey).toString('base64url') };
}

export function headSignatureValid(head: SignedHead, publicKey: KeyObject): boolean {
  return verify(null, headMessage(head.seq, head.hash), publicKey, Buffer.from(head.signature, 'base64url'));
}

export interface ChainBreak {
  seq: number;
  reason: string;
}

/** Walks a chain in storage order and reports the first record that does not link or hash. */
export class ChainVerifier {
  count = 0;
  firstBreak: ChainBreak | null = null;
  private previous = { seq: 0, hash: ZERO_HASH };

  push(record: ChainedRecord): void {
    this.count++;
    if (this.firstBreak) return;
    const expectedSeq = this.previous.seq + 1;
    if (record.seq !== expectedSeq) {
      this.firstBreak = {
        seq: expectedSeq,
        reason: record.seq > expectedSeq ? `record ${expectedSeq} is missing (next is ${record.seq})` : `record ${record.seq} is out of order`,
      };
    } else if (record.prevHash !== this.previous.hash) {
      this.firstBreak = { seq: record.seq, reason: 'prevHash does not match the previous record' };
    } else if (recordHash(record) !== record.hash) {
      this.firstBreak = { seq: record.seq, reason: 'hash does not match the record content (edited)' };
    }
    this.previous = { seq: record.seq, hash: record.hash };
  }

  /** The first break, or else the signed head checked against the chain's end. */
  finish(head: SignedHead | null, publicKey: KeyObject | null): ChainBreak | null {
    return this.firstBreak ?? headBreak(head, this.previous, publicKey);
  }
}

/**
 * Checks the signed head against the chain's end ({ seq: 0, hash: ZERO_HASH } when it has no
 * records): catches truncation and a forged head.
 */
export function headBreak(head: SignedHead | null, end: { seq: number; hash: string }, publicKey: KeyObject | null): ChainBreak | null {
  if (!head) return end.seq === 0 ? null : { seq: end.seq, reason: 'no signed head for a non-empty chain' };
  if (!publicKey || !headSignatureValid(head, publicKey)) return { seq: head.seq, reason: 'head signature does not verify' };
  if (head.seq > end.seq) return { seq: end.seq + 1, reason: `chain truncated: head names seq ${head.seq}, last record is ${end.seq}` };
  if (head.seq < end.seq) return { seq: head.seq + 1, reason: `records after the signed head (seq ${head.seq}) were appended without a signature` };
  if (head.hash !== end.hash) return { seq: head.seq, reason: 'last record differs from the signed head' };
  return null;
}
