import { z } from 'zod';
import { bsn, recordDateTime } from '../../lib/records.ts';
import { defineNode } from '../runtime/definition.ts';
import { seedPersonAndBans } from '../runtime/seed-records.ts';

/** A supervision order: probation supervises the person's special conditions. */
const supervision = z.strictObject({
  type: z.literal('supervision'),
  id: z.string().min(1).max(128),
  bsn,
  office: z.string().min(1),
  since: recordDateTime,
  until: recordDateTime.nullable().optional(),
  electronicMonitoring: z.boolean().default(false),
});

/** Reclassering: persons under supervision and the bans it supervises, with ankle-tag and victim-device flags. */
export default defineNode({
  id: 'reclassering',
  partner: 'RECLASSERING',
  defaultPort: 4104,
  defaultContact: { organisation: 'Reclassering Nederland', unit: 'Meldkamer toezicht', phone: '+31 88 804 1000' },
  acceptsBans: true,
  ownRecordTypes: { supervision },
  seed: (person) => {
    const records = seedPersonAndBans('RECLASSERING', person, {
      organisation: 'Reclassering Nederland',
      unit: `Toezicht ${person.region.name}`,
      phone: '+31 88 804 1000',
    });
    if (records.length > 0) {
      records.push({
        type: 'supervision',
        id: `TZ-${person.index}`,
        bsn: person.bsn,
        office: `Reclassering Nederland, ${person.region.municipality}`,
        since: '2026-01-15T00:00:00Z',
        until: null,
        electronicMonitoring: person.bans.some((b) => b.ban.electronicMonitoring),
      });
    }
    return records;
  },
});
