import type { Clock } from '../../lib/clock.ts';

/**
 * A circuit breaker per node: after `threshold` consecutive failures the node is skipped (and
 * reported UNAVAILABLE at once) for `cooldownMs`; then one trial call is let through.
 */
export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private trialInFlight = false;

  constructor(
    private readonly clock: Clock,
    private readonly threshold = 5,
    private readonly cooldownMs = 5_000,
  ) {}

  /** Whether a call may go out now. */
  allow(): boolean {
    if (this.failures < this.threshold) return true;
    if (this.clock.now() < this.openUntil || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.trialInFlight = false;
  }

  failure(): void {
    this.trialInFlight = false;
    this.failures++;
    if (this.failures >= this.threshold) this.openUntil = this.clock.now() + this.cooldownMs;
  }

  /** A call that ended for its request's sake, not the node's: it counts neither way. */
  abandoned(): void {
    this.trialInFlight = false;
  }

  get state(): 'closed' | 'open' {
    return this.failures >= this.threshold ? 'open' : 'closed';
  }
}
