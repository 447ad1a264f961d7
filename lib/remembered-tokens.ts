/**
 * Tokens that verified, kept by their exact text (signature included), so that a token presented
 * again is not verified again while it still holds: callers and the gateway reuse one token for
 * many requests. Bounded: once full, the longest-remembered token goes first.
 */
export class RememberedTokens<T> {
  private readonly entries = new Map<string, T>();

  constructor(private readonly limit: number) {}

  /** What was remembered for this token, if `holds` still accepts it; otherwise it is forgotten. */
  get(token: string, holds: (entry: T) => boolean): T | undefined {
    const entry = this.entries.get(token);
    if (entry === undefined || holds(entry)) return entry;
    this.entries.delete(token);
    return undefined;
  }

  set(token: string, entry: T): void {
    // A Map iterates in insertion order: its first key is the longest remembered.
    if (this.entries.size >= this.limit) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, entry);
  }
}
