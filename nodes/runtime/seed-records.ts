import type { Partner } from '../../lib/partners.ts';
import type { Contact } from '../../lib/records.ts';
import type { SeedPerson } from './definition.ts';
import type { ImportRecord } from './import-records.ts';

/** The person line and this partner's copies of the person's bans: the common part of every seeder. */
export function seedPersonAndBans(partner: Partner, person: SeedPerson, contact: Contact): ImportRecord[] {
  if (!person.knownBy.has(partner)) return [];
  const records: ImportRecord[] = [{ type: 'person', bsn: person.bsn, contact }];
  for (const { ban, copies } of person.bans) {
    const copy = copies[partner];
    if (!copy) continue;
    const { statusChangedAt: _changed, ...rest } = ban;
    const status = copy.status ?? ban.status;
    records.push({ type: 'ban', ...rest, status, ...(status === ban.status && ban.statusChangedAt ? { statusChangedAt: ban.statusChangedAt } : {}) });
  }
  return records;
}
