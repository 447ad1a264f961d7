import { type IdGenerator, RandomIdGenerator } from '@opentelemetry/sdk-trace-base';

/**
 * Trace ids that begin with the time: 48 bits of milliseconds since 1970 (12 hex digits), then 80
 * random bits (20 hex digits), as AWS X-Ray's trace ids begin with seconds. Each component's audit
 * log indexes its records by trace id; random ids sent every insert to a random leaf of that
 * B-tree, which on a large log meant a page read, one more WAL frame per commit and one more page
 * for the checkpoint to copy. Ids in time order land on the same few leaves at the end.
 *
 * A trace id still says nothing a record does not: the record holds its time. The rightmost 7
 * bytes stay random, as W3C Trace Context level 2 asks of ids it may call random. Span ids stay
 * wholly random.
 */
export class TimeOrderedIdGenerator implements IdGenerator {
  private readonly random = new RandomIdGenerator();

  constructor(private readonly now: () => number = Date.now) {}

  generateTraceId(): string {
    return this.now().toString(16).padStart(12, '0').slice(-12) + this.random.generateTraceId().slice(12);
  }

  generateSpanId(): string {
    return this.random.generateSpanId();
  }
}
