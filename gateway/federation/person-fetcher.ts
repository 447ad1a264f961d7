import { type DocumentNode, type GraphQLSchema, execute, parse } from 'graphql';
import { PARTNER_INFO, type Partner, partnerInfo } from '../../lib/partners.ts';
import { BAN_STATUSES, banMayHaveRunAt } from '../../lib/records.ts';
import type { NodeCallContext, NodeUnavailable } from './node-client.ts';

/** What one partner said about one person: a record, nothing (not known), or no answer. */
export type PartnerAnswer =
  | { partner: Partner; answered: true; record: NodeRecord | null }
  | { partner: Partner; answered: false; reason: string };

export interface NodeRecord {
  contact?: Record<string, string | null> | null;
  bans?: NodeBan[];
}

export interface NodeBan {
  id: string;
  kind: 'CONTACT' | 'LOCATION' | 'HOUSE';
  status: string;
  statusChangedAt: string | null;
  validFrom: string;
  validUntil: string | null;
  protectedBsns?: string[];
  protectsCounterpart?: boolean | null;
  violatedAt?: boolean | null;
  [field: string]: unknown;
}

/**
 * An answer the gateway cannot read without guessing, from a node another organisation built to
 * §5b: a ban status outside ACTIVE, REVOKED and SUSPENDED (`String!` in the node API, so GraphQL
 * lets "active" through), no yes or no to whether a ban protects the counterpart asked about, or,
 * asked about a moment before the request, a ban revoked or suspended on a date the node does not
 * give (DESIGN §10 makes statusChangedAt optional) that ran then: it may have been in force.
 * Read as inactive or as not protecting, each would be a confident NO_HIT; unread, the partner
 * is UNAVAILABLE.
 */
export function unreadable(record: NodeRecord | null, args: PersonArgs): boolean {
  const counterpartAsked = args.counterpartBsn != null;
  const at = Date.parse(args.at);
  return (record?.bans ?? []).some(
    (ban) =>
      !(BAN_STATUSES as readonly string[]).includes(ban.status) ||
      (counterpartAsked && typeof ban.protectsCounterpart !== 'boolean') ||
      (args.atInPast === true && banMayHaveRunAt(ban, at)),
  );
}

export interface PersonArgs {
  at: string;
  /** `at` lies before the request: a ban ended on an unknown date may still have run then. */
  atInPast?: boolean;
  location?: { lat: number; lon: number } | null;
  counterpartBsn?: string | null;
}

/** Far above the selections callers use (a handful per purpose); bounds what callers can make the gateway keep. */
const MAX_DOCUMENTS = 256;

/**
 * Reads the stitched `Person` for one BSN from the given partners, asking each node only for the
 * node-API selection the caller's purpose and query need. Documents are built once per
 * (partners, selection) and reused.
 */
export class PersonFetcher {
  private readonly documents = new Map<string, DocumentNode>();

  constructor(private readonly stitched: GraphQLSchema) {}

  async fetch(bsn: string, partners: readonly Partner[], selection: string, args: PersonArgs, call: NodeCallContext): Promise<PartnerAnswer[]> {
    const result = await execute({
      schema: this.stitched,
      document: this.document(partners, selection),
      variableValues: { bsn, at: args.at, location: args.location ?? null, counterpartBsn: args.counterpartBsn ?? null },
      contextValue: call,
    });
    const person = (result.data?.["person"] ?? null) as Record<string, NodeRecord | null> | null;
    const failed = new Map<string, { reason: string }>();
    for (const error of result.errors ?? []) {
      const field = error.path?.[1];
      const unavailable = error.originalError as Partial<Pick<NodeUnavailable, 'reason'>> | undefined;
      const failure = { reason: String(unavailable?.reason ?? error.extensions?.['code'] ?? 'error') };
      if (typeof field === 'string' && !failed.has(field)) failed.set(field, failure);
      else if (field === undefined) for (const partner of partners) failed.set(partnerInfo(partner).personField, { reason: 'error' });
    }
    return partners.map((partner) => {
      const { personField } = partnerInfo(partner);
      const failure = failed.get(personField) ?? (person ? undefined : { reason: 'no answer' });
      if (failure !== undefined) return { partner, answered: false, ...failure };
      const record = person![personField] ?? null;
      if (unreadable(record, args)) return { partner, answered: false, reason: 'unreadable answer' };
      return { partner, answered: true, record };
    });
  }

  private document(partners: readonly Partner[], selection: string): DocumentNode {
    const key = `${partners.join(',')}|${selection}`;
    let document = this.documents.get(key);
    if (!document) {
      // The selection follows the fields a caller picks: thousands of combinations a purpose
      // allows, each planned at about 50 KiB. The oldest goes first (it is planned again if asked).
      if (this.documents.size >= MAX_DOCUMENTS) this.documents.delete(this.documents.keys().next().value!);
      const fields = PARTNER_INFO.filter((info) => partners.includes(info.partner)).map(
        (info) => `${info.personField}(at: $at, location: $location, counterpartBsn: $counterpartBsn) { __typename ${selection} }`,
      );
      document = parse(
        `query Person($bsn: String!, $at: DateTime!, $location: GeoPointInput, $counterpartBsn: String) { person(bsn: $bsn) { ${fields.join(' ')} } }`,
      );
      this.documents.set(key, document);
    }
    return document;
  }
}
