import { defineNode } from '../runtime/definition.ts';
import { seedPersonAndBans } from '../runtime/seed-records.ts';

/** OM: persons in the prosecution's files, the bans it imposed (art. 509hh Sv, art. 80 Sv) and court conditions (art. 38v Sr). */
export default defineNode({
  id: 'om',
  partner: 'OM',
  defaultPort: 4103,
  defaultContact: { organisation: 'Openbaar Ministerie', unit: 'Zorg- en Veiligheidshuis', phone: '+31 88 699 1000' },
  acceptsBans: true,
  ownRecordTypes: {},
  seed: (person) =>
    seedPersonAndBans('OM', person, {
      organisation: 'Openbaar Ministerie',
      unit: `Arrondissementsparket ${person.region.municipality}`,
      phone: '+31 88 699 1000',
    }),
});
