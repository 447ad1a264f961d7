import { completeBsn } from '../../lib/bsn.ts';
import type { Ban } from '../../lib/records.ts';
import type { NodeId } from '../../lib/partners.ts';

const bsn = (firstEight: string) => {
  const value = completeBsn(firstEight);
  if (!value) throw new Error(`no valid BSN starts with ${firstEight}`);
  return value;
};

/** The persons of the federation fixtures. Every BSN is valid; none belongs to a real person. */
export const PERSONS = {
  /** Under several bans held by politie, OM and probation; known to Veilig Thuis too. */
  subject: bsn('11122233'),
  /** Protected by the subject's contact, location and house bans. */
  victim: '123456782',
  /** Known to nobody's bans: a counterpart no ban protects. */
  unrelated: bsn('20202020'),
  /** Known only to Veilig Thuis. */
  vtOnly: bsn('30303030'),
  /** Known to nobody. */
  unknown: bsn('40404040'),
} as const;

/** The circle of the subject's location ban, and points inside and outside it. */
export const AREA = {
  center: { lat: 51.92, lon: 4.48 },
  radiusMeters: 5000,
  inside: { lat: 51.94, lon: 4.49 }, // ≈ 2.3 km from the centre
  outside: { lat: 51.99, lon: 4.48 }, // ≈ 7.8 km from the centre
};

/** Instants the tests ask about, chosen against the windows below. */
export const AT = {
  /** B1, B2 and B5 active; B6 (house ban) active too. */
  may2026: '2026-05-05T12:00:00Z',
  /** B5 still active: revoked only on 2026-03-01. */
  feb2026: '2026-02-01T00:00:00Z',
  /** After B1 ended; only B2 (open-ended) remains. */
  y2028: '2028-06-01T00:00:00Z',
};

const contact = (organisation: string, unit: string, phone: string) => ({ organisation, unit, phone });

const B1 = {
  type: 'ban', id: 'PN-10-000001-25/1', bsn: PERSONS.subject, kind: 'CONTACT', legalBasis: 'art. 38v Sr',
  imposedBy: 'Rechtbank Rotterdam', status: 'ACTIVE', validFrom: '2025-01-01T00:00:00Z', validUntil: '2027-01-01T00:00:00Z',
  conditions: 'Geen contact, ook niet digitaal.', protectedBsns: [PERSONS.victim], electronicMonitoring: true, victimDevice: true,
  notify: contact('Reclassering Nederland', 'Toezicht Rotterdam', '+31 88 804 1000'),
};
const B2 = {
  type: 'ban', id: 'PN-10-000002-25/1', bsn: PERSONS.subject, kind: 'LOCATION', legalBasis: 'art. 509hh Sv', imposedBy: 'OM',
  status: 'ACTIVE', validFrom: '2025-06-01T00:00:00Z', validUntil: null,
  area: { description: '5 km rond woning slachtoffer', municipality: 'Rotterdam', center: AREA.center, radiusMeters: AREA.radiusMeters },
  protectedBsns: [PERSONS.victim], electronicMonitoring: false, victimDevice: false,
};
const B3_EXPIRED = {
  type: 'ban', id: 'PN-10-000003-23/1', bsn: PERSONS.subject, kind: 'CONTACT', legalBasis: 'art. 80 Sv', imposedBy: 'Rechtbank Rotterdam',
  status: 'ACTIVE', validFrom: '2024-01-01T00:00:00Z', validUntil: '2025-01-01T00:00:00Z', protectedBsns: [PERSONS.unrelated],
  electronicMonitoring: false, victimDevice: false,
};
const B4_FUTURE = {
  type: 'ban', id: 'PN-10-000004-29/1', bsn: PERSONS.subject, kind: 'CONTACT', legalBasis: 'art. 38v Sr', imposedBy: 'Rechtbank Rotterdam',
  status: 'ACTIVE', validFrom: '2030-01-01T00:00:00Z', validUntil: null, protectedBsns: [PERSONS.unrelated],
  electronicMonitoring: false, victimDevice: false,
};
const B5_REVOKED = {
  type: 'ban', id: 'PN-10-000005-25/1', bsn: PERSONS.subject, kind: 'CONTACT', legalBasis: 'art. 509hh Sv', imposedBy: 'OM',
  status: 'REVOKED', statusChangedAt: '2026-03-01T00:00:00Z', validFrom: '2025-01-01T00:00:00Z', validUntil: null,
  protectedBsns: [PERSONS.unrelated], electronicMonitoring: false, victimDevice: false,
};
const B6_HOUSE = {
  type: 'ban', id: 'HV-0599-2026-0042', bsn: PERSONS.subject, kind: 'HOUSE', legalBasis: 'Wet tijdelijk huisverbod art. 2',
  imposedBy: 'Burgemeester Rotterdam', status: 'ACTIVE', validFrom: '2026-05-01T00:00:00Z', validUntil: '2026-05-11T00:00:00Z',
  area: { description: 'Woning Voorbeeldstraat 1', municipality: 'Rotterdam', center: AREA.center, radiusMeters: 50 },
  protectedBsns: [PERSONS.victim], electronicMonitoring: false, victimDevice: false,
};
const B7_SUSPENDED = {
  type: 'ban', id: 'PN-10-000007-24/1', bsn: PERSONS.subject, kind: 'LOCATION', legalBasis: 'art. 38v Sr', imposedBy: 'Rechtbank Rotterdam',
  status: 'SUSPENDED', statusChangedAt: '2025-03-01T00:00:00Z', validFrom: '2024-06-01T00:00:00Z', validUntil: null,
  area: { description: 'Centrum Rotterdam' }, protectedBsns: [], electronicMonitoring: false, victimDevice: false,
};

/** Each node's import file. B1 is held by three nodes, B2 by two: merged by id at the gateway. */
export const FIXTURES: Record<NodeId, object[]> = {
  politie: [
    { type: 'person', bsn: PERSONS.subject, contact: contact('Politie Eenheid Rotterdam', 'Team Zorg en Veiligheid', '+31 10 000 0000') },
    B1,
    B2,
    B6_HOUSE,
  ],
  'veilig-thuis': [
    { type: 'person', bsn: PERSONS.subject, contact: contact('Veilig Thuis Rotterdam Rijnmond', 'Team Triage', '0800 2000') },
    { type: 'person', bsn: PERSONS.vtOnly, contact: contact('Veilig Thuis Haaglanden', 'Team Triage', '0800 2000') },
    { type: 'report', id: 'VT-1', bsn: PERSONS.subject, region: 'Rotterdam-Rijnmond', receivedAt: '2026-04-01T09:00:00Z', category: 'HUISELIJK_GEWELD' },
  ],
  om: [B1, B2, B3_EXPIRED, B4_FUTURE, B5_REVOKED, B7_SUSPENDED],
  reclassering: [
    { type: 'person', bsn: PERSONS.subject, contact: contact('Reclassering Nederland', 'Toezicht Rotterdam', '+31 88 804 1000') },
    B1,
    { type: 'supervision', id: 'TZ-1', bsn: PERSONS.subject, office: 'Reclassering Rotterdam', since: '2025-01-01T00:00:00Z' },
  ],
};

/** A well-formed ban line (DESIGN §10): an open-ended, active contact ban protecting no one, unless `overrides` say otherwise. */
export function banLine(id: string, bsn: string, overrides: Partial<Ban> = {}): Ban & { type: 'ban' } {
  return {
    type: 'ban',
    id,
    bsn,
    kind: 'CONTACT',
    legalBasis: 'art. 38v Sr',
    imposedBy: 'Rechtbank Rotterdam',
    status: 'ACTIVE',
    validFrom: '2025-01-01T00:00:00Z',
    validUntil: null,
    protectedBsns: [],
    electronicMonitoring: false,
    victimDevice: false,
    ...overrides,
  };
}

export function ndjson(records: object[]): string {
  return records.map((record) => JSON.stringify(record)).join('\n') + '\n';
}

/** Every BSN the fixtures use: none may appear in any audit file, log line or span. */
export const ALL_BSNS: string[] = Object.values(PERSONS);

/** The examples of RFC 8785 §3.2.2 (numbers, string escapes, literals) and §3.2.3 (key order by UTF-16 code units), as JSON texts. */
export const RFC8785_EXAMPLES: { section: string; input: string; canonical: string }[] = [
  {
    section: '§3.2.2',
    input: String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`,
    canonical: String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
  },
  {
    section: '§3.2.3',
    input: String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`,
    canonical:
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis",' +
      '"€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
  },
];
