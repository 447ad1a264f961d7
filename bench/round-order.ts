/**
 * The order of round `round` (1, 2, …): the targets read as a ring from position `round − 1`,
 * forwards in odd rounds and backwards in even ones. Every target runs once per round; neighbours
 * on the ring stay next to each other (measured seconds apart, so the machine's drift cancels in
 * their ratio), and each pair runs in both orders (A B, then B A), so that no target always
 * inherits what the one before it leaves behind: warm or cold node caches, a pending WAL
 * checkpoint. A plain rotation kept every target behind the same neighbour in every round.
 */
export function roundOrder<T>(targets: readonly T[], round: number): T[] {
  const count = targets.length;
  const start = (round - 1) % count;
  const step = round % 2 === 1 ? 1 : -1;
  return targets.map((_, index) => targets[(((start + step * index) % count) + count) % count]!);
}
