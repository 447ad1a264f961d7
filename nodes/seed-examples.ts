import { banActiveAt } from '../lib/records.ts';
import { seedPopulation } from './runtime/seed.ts';

export interface SeedExamples {
  /** Known to three or more partners. */
  hitBsn: string | null;
  /** Under an active LOCATION ban with a circle: a point inside it. */
  locationBan: { bsn: string; inside: { lat: number; lon: number } } | null;
  /** Under an active CONTACT ban: the banned person and a protected person. */
  contactBan: { bsn: string; protectedBsn: string } | null;
}

/** Finds demonstration subjects in a seeded population, for the requests `soh up` prints. */
export function findExamples(params: { persons: number; seed: number }, now: number): SeedExamples {
  const examples: SeedExamples = { hitBsn: null, locationBan: null, contactBan: null };
  for (const person of seedPopulation(params)) {
    if (!examples.hitBsn && person.knownBy.size >= 3) examples.hitBsn = person.bsn;
    for (const { ban, copies } of person.bans) {
      if (!banActiveAt(ban, now) || Object.keys(copies).length < 2) continue;
      if (!examples.locationBan && ban.kind === 'LOCATION' && ban.area?.center) {
        examples.locationBan = { bsn: person.bsn, inside: ban.area.center };
      }
      if (!examples.contactBan && ban.kind === 'CONTACT' && ban.protectedBsns[0]) {
        examples.contactBan = { bsn: person.bsn, protectedBsn: ban.protectedBsns[0] };
      }
    }
    if (examples.hitBsn && examples.locationBan && examples.contactBan) break;
  }
  return examples;
}
