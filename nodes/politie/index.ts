import { defineNode } from '../runtime/definition.ts';
import { seedPersonAndBans } from '../runtime/seed-records.ts';

/** Politie: persons known to the police and the bans they enforce, tijdelijk huisverbod included. */
export default defineNode({
  id: 'politie',
  partner: 'POLITIE',
  defaultPort: 4101,
  defaultContact: { organisation: 'Politie', unit: 'Team Zorg en Veiligheid', phone: '+31 900 8844' },
  acceptsBans: true,
  ownRecordTypes: {},
  seed: (person) =>
    seedPersonAndBans('POLITIE', person, {
      organisation: person.region.politieEenheid,
      unit: 'Team Zorg en Veiligheid',
      phone: '+31 900 8844',
    }),
});
