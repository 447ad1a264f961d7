import { ROOT_CONTEXT, SpanKind, SpanStatusCode, type Tracer, propagation, trace } from '@opentelemetry/api';
import type { ExecutionRequest, ExecutionResult, Executor } from '@graphql-tools/utils';
import { type DocumentNode, print } from 'graphql';
import { Pool } from 'undici';
import type { Clock } from '../../lib/clock.ts';
import type { NodeId } from '../../lib/partners.ts';
import type { SubjectRefFn } from '../../lib/subject-ref.ts';
import type { Caller } from '../auth/caller-token.ts';
import type { DownstreamTokens } from '../auth/downstream-token.ts';
import { CircuitBreaker } from './breaker.ts';
import { postJson } from './post-json.ts';
import type { Deadline } from './deadline.ts';

/** What a node call needs from the request it serves. */
export interface NodeCallContext {
  caller: Caller;
  deadline: Deadline;
  /** The gateway's request span: node calls are its children. */
  span: import('@opentelemetry/api').Span;
  /** The subject references the request passes to nodes (DESIGN §3). */
  subjectRef: SubjectRefFn;
  /**
   * Nodes a call of this request was sent to, marked as the call leaves, whatever comes back: a
   * node never sent a call cannot have seen the request (its circuit was open, or the deadline
   * passed first), and a call still under way when the request ends may yet have been seen.
   */
  reached: Set<NodeId>;
}

export class NodeUnavailable extends Error {
  override name = 'NodeUnavailable';
  constructor(
    readonly nodeId: NodeId,
    readonly reason: string,
  ) {
    super(`node ${nodeId} is unavailable: ${reason}`);
  }
}

/**
 * Above any answer the node API gives: a `records` batch is a few KiB, and processingRecords for
 * 1,000 traces about 1 KiB per record, at most 8 records a trace (4 root fields of two persons),
 * so under 9 MiB. Beyond it a node is UNAVAILABLE, not a memory hazard.
 */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
const DEADLINE_PASSED = 'deadline passed';
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);
const printed = new WeakMap<DocumentNode, string>();

/**
 * The HTTP client for one node: a keep-alive undici pool, the request's shared deadline, one
 * retry on a dropped connection while time remains, a circuit breaker, the downstream token and
 * W3C trace context. It is the executor the stitched schema delegates through.
 */
export class NodeClient {
  readonly breaker: CircuitBreaker;
  private readonly pool: Pool;

  constructor(
    readonly nodeId: NodeId,
    readonly url: string,
    private readonly deps: { tokens: DownstreamTokens; tracer: Tracer; clock: Clock; connections?: number },
  ) {
    this.pool = new Pool(url, { connections: deps.connections ?? 32, pipelining: 1, keepAliveTimeout: 60_000 });
    this.breaker = new CircuitBreaker(deps.clock);
  }

  readonly executor: Executor = async (request: ExecutionRequest) => {
    const call = request.context as NodeCallContext;
    const permit = this.breaker.allow();
    if (!permit) throw new NodeUnavailable(this.nodeId, 'circuit open');
    const leftWith = call.deadline.remainingMs();
    let query = printed.get(request.document);
    if (!query) printed.set(request.document, (query = print(request.document)));
    const body = JSON.stringify({ query, variables: request.variables });
    const parent = trace.setSpan(ROOT_CONTEXT, call.span);
    const span = this.deps.tracer.startSpan(`node.call ${this.nodeId}`, { kind: SpanKind.CLIENT, attributes: { 'soh.node': this.nodeId } }, parent);
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${await this.deps.tokens.mint(this.nodeId, call.caller)}`,
      };
      propagation.inject(trace.setSpan(parent, span), headers);
      const result = await this.send(headers, body, call);
      this.breaker.success(permit);
      return result;
    } catch (error) {
      // A call cut off because its request was answered (another root field failed it), never sent
      // because the request's deadline had passed, or cut off by a deadline it left with less than
      // half of, says nothing about the node: counted as a failure, a caller's malformed or slowly
      // sent requests, or a moment of the gateway's own overload, could open every partner's circuit.
      const notTheNodes = call.deadline.answered || (error instanceof NodeUnavailable && error.reason === DEADLINE_PASSED) || (call.deadline.expired && leftWith < call.deadline.budgetMs / 2);
      if (notTheNodes) this.breaker.abandoned(permit);
      else this.breaker.failure(permit);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).name });
      throw error instanceof NodeUnavailable ? error : new NodeUnavailable(this.nodeId, (error as Error).name);
    } finally {
      span.end();
    }
  };

  private async send(headers: Record<string, string>, body: string, call: NodeCallContext): Promise<ExecutionResult> {
    const deadline = call.deadline;
    for (let attempt = 1; ; attempt++) {
      if (deadline.remainingMs() <= 0) throw new NodeUnavailable(this.nodeId, DEADLINE_PASSED);
      call.reached.add(this.nodeId);
      try {
        // The request's deadline alone bounds the call: undici's own timeouts are coarser.
        const response = await postJson(this.pool, '/graphql', headers, body, deadline.signal, MAX_ANSWER_BYTES);
        const text = response.text;
        if (response.statusCode >= 500) throw new NodeUnavailable(this.nodeId, `HTTP ${response.statusCode}`);
        const result = JSON.parse(text) as ExecutionResult;
        if (response.statusCode !== 200 && !result.errors?.length) throw new NodeUnavailable(this.nodeId, `HTTP ${response.statusCode}`);
        return result;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (attempt < 2 && code && RETRYABLE.has(code) && deadline.remainingMs() > 50) continue;
        throw error;
      }
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
