import { z } from 'zod';
import { bsn, recordDateTime } from '../../lib/records.ts';
import { defineNode } from '../runtime/definition.ts';

/** A report (melding) received by a regional Veilig Thuis organisation. It never leaves the node. */
const report = z.strictObject({
  type: z.literal('report'),
  id: z.string().min(1).max(128),
  bsn,
  region: z.string().min(1),
  receivedAt: recordDateTime,
  category: z.enum(['HUISELIJK_GEWELD', 'KINDERMISHANDELING', 'OUDERENMISHANDELING', 'STALKING']),
});

const CATEGORIES = ['HUISELIJK_GEWELD', 'KINDERMISHANDELING', 'OUDERENMISHANDELING', 'STALKING'] as const;

/** Veilig Thuis: persons with reports, one node for the 25 regional organisations. */
export default defineNode({
  id: 'veilig-thuis',
  partner: 'VEILIG_THUIS',
  defaultPort: 4102,
  defaultContact: { organisation: 'Veilig Thuis', phone: '0800 2000' },
  acceptsBans: false,
  ownRecordTypes: { report },
  seed: (person, rng) => {
    if (!person.knownBy.has('VEILIG_THUIS')) return [];
    const region = person.region.name;
    const contact = {
      organisation: `Veilig Thuis ${region}`,
      unit: 'Team Triage',
      phone: '0800 2000',
      email: `triage@vt-${region.toLowerCase().replace(/[^a-z]+/g, '-')}.example.nl`,
    };
    const reports = Array.from({ length: rng.int(1, 4) }, (_, n) => ({
      type: 'report' as const,
      id: `VT-${person.index}-${n + 1}`,
      bsn: person.bsn,
      region,
      receivedAt: new Date(Date.parse('2026-10-01T00:00:00Z') - rng.int(0, 900) * 86_400_000).toISOString(),
      category: rng.pick(CATEGORIES),
    }));
    return [{ type: 'person', bsn: person.bsn, contact }, ...reports];
  },
});
