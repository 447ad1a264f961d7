import { completeBsn } from '../../lib/bsn.ts';
import type { Partner } from '../../lib/partners.ts';
import type { Ban } from '../../lib/records.ts';
import type { SeedBan, SeedPerson, SeedRegion } from './definition.ts';
import { type Rng, createRng } from './random.ts';

/**
 * The synthetic population behind `soh seed`: persons with valid BSNs, realistic overlap between
 * partners, and bans of every kind, status and time window whose copies sit at the nodes that
 * impose, supervise or enforce them. Fully determined by (persons, seed): no clock is read, so
 * the windows are laid around a fixed epoch.
 */
export const SEED_EPOCH = Date.parse('2026-11-01T00:00:00Z');
const DAY = 86_400_000;

export const REGIONS: readonly SeedRegion[] = [
  { name: 'Haaglanden', municipality: 'Den Haag', court: 'Rechtbank Den Haag', politieEenheid: 'Politie Eenheid Den Haag', lat: 52.0705, lon: 4.3007 },
  { name: 'Rotterdam-Rijnmond', municipality: 'Rotterdam', court: 'Rechtbank Rotterdam', politieEenheid: 'Politie Eenheid Rotterdam', lat: 51.9244, lon: 4.4777 },
  { name: 'Amsterdam-Amstelland', municipality: 'Amsterdam', court: 'Rechtbank Amsterdam', politieEenheid: 'Politie Eenheid Amsterdam', lat: 52.3676, lon: 4.9041 },
  { name: 'Utrecht', municipality: 'Utrecht', court: 'Rechtbank Midden-Nederland', politieEenheid: 'Politie Eenheid Midden-Nederland', lat: 52.0907, lon: 5.1214 },
  { name: 'Groningen', municipality: 'Groningen', court: 'Rechtbank Noord-Nederland', politieEenheid: 'Politie Eenheid Noord-Nederland', lat: 53.2194, lon: 6.5665 },
  { name: 'Brabant-Noord', municipality: "'s-Hertogenbosch", court: 'Rechtbank Oost-Brabant', politieEenheid: 'Politie Eenheid Oost-Brabant', lat: 51.6978, lon: 5.3037 },
  { name: 'Limburg-Zuid', municipality: 'Maastricht', court: 'Rechtbank Limburg', politieEenheid: 'Politie Eenheid Limburg', lat: 50.8514, lon: 5.691 },
  { name: 'Gelderland-Midden', municipality: 'Arnhem', court: 'Rechtbank Gelderland', politieEenheid: 'Politie Eenheid Oost-Nederland', lat: 51.9851, lon: 5.8987 },
];

const KNOWN_BY: readonly [Partner, number][] = [
  ['VEILIG_THUIS', 0.3],
  ['POLITIE', 0.4],
  ['OM', 0.15],
  ['RECLASSERING', 0.08],
];

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/**
 * The most persons one seed makes: ten times the benchmark's million, about ten minutes here. The
 * BSN walk below holds some 81 million distinct BSNs, so no seed this size can repeat one.
 */
export const MAX_SEED_PERSONS = 10_000_000;

/** Distinct valid BSNs, deterministically: a full-period walk over the eight-digit prefixes. */
function* bsnSequence(rng: Rng): Generator<string> {
  const span = 90_000_000;
  const step = 7_919; // prime, coprime with the span: every prefix is visited once
  let prefix = rng.int(0, span);
  for (;;) {
    prefix = (prefix + step) % span;
    const bsn = completeBsn(String(10_000_000 + prefix));
    if (bsn) yield bsn;
  }
}

interface BanTemplate {
  kind: Ban['kind'];
  legalBasis: string;
  imposer: Partner;
  holders: Partner[];
  imposedBy(region: SeedRegion): string;
  days: number | null;
}

const TEMPLATES: readonly [BanTemplate, number][] = [
  [{ kind: 'CONTACT', legalBasis: 'art. 38v Sr', imposer: 'OM', holders: ['OM', 'RECLASSERING', 'POLITIE'], imposedBy: (r) => r.court, days: 730 }, 0.3],
  [{ kind: 'LOCATION', legalBasis: 'art. 38v Sr', imposer: 'OM', holders: ['OM', 'RECLASSERING', 'POLITIE'], imposedBy: (r) => r.court, days: 730 }, 0.15],
  [{ kind: 'LOCATION', legalBasis: 'art. 509hh Sv', imposer: 'OM', holders: ['OM', 'POLITIE'], imposedBy: () => 'OM', days: 90 }, 0.2],
  [{ kind: 'CONTACT', legalBasis: 'art. 509hh Sv', imposer: 'OM', holders: ['OM', 'POLITIE'], imposedBy: () => 'OM', days: 90 }, 0.1],
  [{ kind: 'CONTACT', legalBasis: 'art. 80 Sv', imposer: 'OM', holders: ['OM', 'RECLASSERING'], imposedBy: (r) => r.court, days: null }, 0.1],
  [{ kind: 'HOUSE', legalBasis: 'Wet tijdelijk huisverbod art. 2', imposer: 'POLITIE', holders: ['POLITIE'], imposedBy: (r) => `Burgemeester ${r.municipality}`, days: 10 }, 0.15],
];

function pickWeighted<T>(rng: Rng, items: readonly [T, number][]): T {
  let roll = rng.next() * items.reduce((sum, [, weight]) => sum + weight, 0);
  for (const [item, weight] of items) if ((roll -= weight) <= 0) return item;
  return items[items.length - 1]![0];
}

function offset(rng: Rng, region: SeedRegion, meters: number) {
  const angle = rng.next() * 2 * Math.PI;
  const distance = rng.next() * meters;
  return {
    lat: Number((region.lat + (distance * Math.cos(angle)) / 111_320).toFixed(5)),
    lon: Number((region.lon + (distance * Math.sin(angle)) / (111_320 * Math.cos((region.lat * Math.PI) / 180))).toFixed(5)),
  };
}

function makeBan(rng: Rng, person: { bsn: string; region: SeedRegion }, victims: string[], serial: number): SeedBan {
  const template = pickWeighted(rng, TEMPLATES);
  const region = person.region;
  // Windows: mostly running now, some expired, some starting later.
  const phase = pickWeighted(rng, [['current', 0.75], ['expired', 0.15], ['future', 0.1]] as [string, number][]);
  const length = template.days ?? rng.int(120, 720);
  const from =
    phase === 'future' ? SEED_EPOCH + rng.int(30, 180) * DAY
    : phase === 'expired' ? SEED_EPOCH - (length + rng.int(10, 400)) * DAY
    : SEED_EPOCH - rng.int(1, Math.max(2, Math.min(length, 365))) * DAY;
  // A running ban is given 700 days more, so that the data stays current for a while after the
  // epoch; an expired one ends when its length says, before the epoch.
  const until = template.days === null ? null : from + (template.kind === 'HOUSE' || phase === 'expired' ? length : length + 700) * DAY;
  const statusRoll = rng.next();
  const status: Ban['status'] = statusRoll < 0.82 ? 'ACTIVE' : statusRoll < 0.93 ? 'REVOKED' : 'SUSPENDED';
  const ban: Ban = {
    id: `PN-${String(10 + REGIONS.indexOf(region)).padStart(2, '0')}-${String(100000 + serial).slice(-6)}-${String(new Date(from).getUTCFullYear()).slice(2)}/${rng.int(1, 4)}`,
    bsn: person.bsn,
    kind: template.kind,
    legalBasis: template.legalBasis,
    imposedBy: template.imposedBy(region),
    status,
    ...(status === 'ACTIVE' ? {} : { statusChangedAt: iso(Math.min(SEED_EPOCH - DAY, from + rng.int(1, 60) * DAY)) }),
    validFrom: iso(from),
    validUntil: until === null ? null : iso(until),
    protectedBsns: victims,
    electronicMonitoring: template.holders.includes('RECLASSERING') && rng.chance(0.35),
    victimDevice: false,
  };
  ban.victimDevice = ban.electronicMonitoring && rng.chance(0.6);
  if (template.kind === 'CONTACT') {
    ban.conditions = 'Geen contact op welke wijze dan ook, ook niet digitaal of via derden, met de beschermde perso(o)n(en).';
  } else {
    const home = offset(rng, region, 8_000);
    ban.area = template.kind === 'HOUSE'
      ? { description: 'Woning en directe omgeving van de woning', municipality: region.municipality, center: home, radiusMeters: 50 }
      // The description names no distance: police may read it, but not the circle (DESIGN §6).
      : { description: 'Gebied rond de woning van het slachtoffer', municipality: region.municipality, center: home, radiusMeters: 5000 };
    ban.conditions = template.kind === 'HOUSE'
      ? 'Verboden de woning te betreden of daar aanwezig te zijn; geen contact met de achterblijvers.'
      : 'Verboden zich binnen het gebied te bevinden, behoudens toestemming van de reclassering.';
  }
  if (template.holders.includes('RECLASSERING')) {
    ban.notify = { organisation: 'Reclassering Nederland', unit: `Toezicht ${region.name}`, phone: '+31 88 804 1000' };
  } else if (template.imposer === 'OM') {
    ban.notify = { organisation: 'Openbaar Ministerie', unit: `Arrondissementsparket ${region.municipality}`, phone: '+31 88 699 1000' };
  }
  const copies: SeedBan['copies'] = {};
  for (const holder of template.holders) {
    // The imposer always holds its copy; others mostly do, and now and then lag behind a revocation.
    if (holder !== template.imposer && !rng.chance(0.85)) continue;
    copies[holder] =
      holder !== template.imposer && status !== 'ACTIVE' && rng.chance(0.3) ? { status: 'ACTIVE' } : {};
  }
  return { ban, copies };
}

/** The population, one person at a time, so a million persons never sit in memory at once. */
export function* seedPopulation(options: { persons: number; seed: number }): Generator<SeedPerson> {
  const rng = createRng(options.seed);
  const bsns = bsnSequence(createRng(options.seed ^ 0x5eed));
  const victimPool: string[] = [];
  let serial = 0;
  for (let index = 0; index < options.persons; index++) {
    const bsn = bsns.next().value as string;
    const region = rng.pick(REGIONS);
    const knownBy = new Set<Partner>();
    for (const [partner, probability] of KNOWN_BY) if (rng.chance(probability)) knownBy.add(partner);
    const bans: SeedBan[] = [];
    if (victimPool.length > 0 && rng.chance(0.06)) {
      const count = rng.chance(0.2) ? 2 : 1;
      for (let b = 0; b < count; b++) {
        const victims = [rng.pick(victimPool)];
        if (rng.chance(0.2)) victims.push(rng.pick(victimPool));
        const seeded = makeBan(rng, { bsn, region }, [...new Set(victims.filter((v) => v !== bsn))], serial++);
        bans.push(seeded);
        for (const holder of Object.keys(seeded.copies) as Partner[]) knownBy.add(holder);
      }
    } else if (victimPool.length < 5_000 || rng.chance(0.05)) {
      victimPool.push(bsn);
      if (victimPool.length > 50_000) victimPool.splice(rng.int(0, victimPool.length), 1);
    }
    yield { bsn, index, knownBy, region, bans };
  }
}
