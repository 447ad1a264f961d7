/**
 * Which node-API fields to ask for, derived from the public fields a (purpose-checked) document
 * selects: nodes are never asked for more than the caller may see and asked to see. The fields
 * that decide activity and merging (id, kind, status, validity) are always fetched for bans.
 */
const CONTACT_FIELDS = ['organisation', 'unit', 'phone', 'email'];
const BAN_SCALARS = ['legalBasis', 'imposedBy', 'conditions', 'electronicMonitoring', 'victimDevice', 'violatedAt'];
const BAN_BASE = 'id kind status statusChangedAt validFrom validUntil';

type Selected = ReadonlySet<string>;

function contactSelection(selected: Selected): string {
  const fields = CONTACT_FIELDS.filter((field) => selected.has(`PartnerContact.${field}`));
  return `{ ${fields.length ? fields.join(' ') : '__typename'} }`;
}

export function hitCheckSelection(selected: Selected): string {
  return selected.has('PartnerHit.contact') ? `contact ${contactSelection(selected)}` : '';
}

export function activeBansSelection(selected: Selected): string {
  const fields = [BAN_BASE, ...BAN_SCALARS.filter((field) => selected.has(`Ban.${field}`))];
  if (selected.has('Ban.protectedPersonRefs')) fields.push('protectedBsns');
  if (selected.has('Ban.notify')) fields.push(`notify ${contactSelection(selected)}`);
  if (selected.has('Ban.area')) {
    const area = ['description', 'municipality', 'radiusMeters'].filter((field) => selected.has(`BanArea.${field}`));
    if (selected.has('BanArea.center')) area.push('center { lat lon }');
    fields.push(`area { ${area.length ? area.join(' ') : '__typename'} }`);
  }
  return `bans { ${fields.join(' ')} }`;
}

export function contactBannedSelection(): string {
  return `bans { ${BAN_BASE} protectsCounterpart }`;
}
