import { expect, it } from 'vitest';
import type { Ban } from '../../lib/records.ts';
import { banLine } from './fixtures.ts';
import type { NodeStore } from '../../nodes/store/store.ts';

// Valid BSNs of their own, so that the suite can run on a store other tests use too.
const [FIRST, SECOND, THIRD, FOURTH, FIFTH, SIXTH, SEVENTH, EIGHTH] = [
  '100000009', '100000010', '100000022', '100000034', '100000046', '100000058', '100000071', '100000083',
];
const contact = { organisation: 'Politie', unit: 'Team Zorg en Veiligheid' };

const ban = (id: string, bsn: string) => banLine(id, bsn);
const ids = (record: { bans: Ban[] } | null | undefined) => record?.bans.map((b) => b.id);

/**
 * A ban or own record re-imported under another BSN (a typing error put right) takes the old
 * BSN's hit with it: the person it was wrongly filed under is no longer known to the node, unless
 * a person line or another record still names them (DESIGN §10: import is an upsert by id).
 */
export function recordMoves(store: () => NodeStore): void {
  it('forgets a BSN whose only ban moved to another BSN', async () => {
    await store().load([ban('MOVE-1', FIRST)]);
    expect((await store().lookup([FIRST]))[0]).not.toBeNull();
    await store().load([ban('MOVE-1', SECOND)]);
    const [first, second] = await store().lookup([FIRST, SECOND]);
    expect(first).toBeNull();
    expect(ids(second)).toEqual(['MOVE-1']);
  });

  it('keeps a person line, and a subject another ban still names, known after a ban moves away', async () => {
    await store().load([{ type: 'person', bsn: THIRD, contact }, ban('MOVE-2', THIRD), ban('MOVE-3', FOURTH), ban('MOVE-4', FOURTH)]);
    await store().load([ban('MOVE-2', FIFTH), ban('MOVE-3', FIFTH)]);
    const [third, fourth, fifth] = await store().lookup([THIRD, FOURTH, FIFTH]);
    expect(third).toEqual({ contact, bans: [] });
    expect(ids(fourth)).toEqual(['MOVE-4']);
    expect(ids(fifth)).toEqual(['MOVE-2', 'MOVE-3']);
  });

  it('forgets a BSN whose only own record moved, and keeps a subject listed after its person line came in a later file', async () => {
    await store().load([{ type: 'report', id: 'R-MOVE-1', bsn: SIXTH }]);
    await store().load([{ type: 'person', bsn: SIXTH }]);
    await store().load([{ type: 'report', id: 'R-MOVE-1', bsn: FIRST }]);
    expect((await store().lookup([SIXTH]))[0]).toEqual({ contact: null, bans: [] });
    await store().load([{ type: 'report', id: 'R-MOVE-1', bsn: SECOND }]);
    expect((await store().lookup([FIRST]))[0]).toBeNull();
  });

  it('forgets a BSN a ban left within the same load (a store is not only fed by soh import, which refuses that)', async () => {
    await store().load([ban('MOVE-5', SEVENTH), { type: 'report', id: 'R-MOVE-2', bsn: SEVENTH }, ban('MOVE-5', EIGHTH), { type: 'report', id: 'R-MOVE-2', bsn: EIGHTH }]);
    const [seventh, eighth] = await store().lookup([SEVENTH, EIGHTH]);
    expect(seventh).toBeNull();
    expect(ids(eighth)).toEqual(['MOVE-5']);
  });
}
