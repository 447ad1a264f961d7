import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trace } from '@opentelemetry/api';
import { parse } from 'graphql';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DownstreamTokens } from '../gateway/auth/downstream-token.ts';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { CircuitBreaker } from '../gateway/federation/breaker.ts';
import { Deadline } from '../gateway/federation/deadline.ts';
import { type NodeCallContext, NodeClient, NodeUnavailable } from '../gateway/federation/node-client.ts';
import type { Clock } from '../lib/clock.ts';
import { systemClock } from '../lib/clock.ts';
import { subjectRefs } from '../lib/subject-ref.ts';

/**
 * Which nodes a request reached decides whose word the access log takes (`reached: false`,
 * DESIGN §7): a node is marked as a call to it leaves, before any answer, and never when the call
 * was held back by an open circuit or a deadline that had already passed. The circuit breaker
 * counts only what the node did: a partner's circuit open is every answer without it for 5 s.
 */
const QUERY = parse('query Ping { __typename }');
/** Lets a held call have its answer. */
const answerHeld = (response: ServerResponse) => response.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"__typename":"Query"}}');

describe('a node call', () => {
  let dataDir: string;
  let server: Server;
  let url: string;
  let held: ServerResponse[] = [];
  let arrived: () => void = () => {};
  const clients: NodeClient[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'soh-node-client-'));
    // Holds every response until the test lets it go: the call is under way meanwhile.
    server = createServer((request: IncomingMessage, response: ServerResponse) => {
      request.resume().on('end', () => {
        held.push(response);
        arrived();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterEach(() => {
    for (const response of held) answerHeld(response);
    held = [];
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await new Promise((resolve) => server.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  function clientFor(clock: Clock = systemClock, connections?: number): NodeClient {
    const client = new NodeClient('reclassering', url, { tokens: new DownstreamTokens(new GatewayKeys(dataDir), clock), tracer: trace.getTracer('test'), clock, connections });
    clients.push(client);
    return client;
  }

  function callContext(budgetMs: number): NodeCallContext {
    return {
      caller: { iss: 'https://idp.test.example', sub: 'tester', org: 'politie', roles: ['politie-medewerker'], purpose: 'police-ban-enforcement', caseRef: 'PL-1', jti: 'j' },
      deadline: new Deadline(systemClock, budgetMs),
      span: trace.getTracer('test').startSpan('test'),
      subjectRef: subjectRefs(Buffer.alloc(32, 7)),
      reached: new Set(),
    };
  }

  it('marks its node reached as the call leaves, before the node answers', async () => {
    const client = clientFor();
    const context = callContext(5_000);
    const atNode = new Promise<void>((resolve) => (arrived = resolve));
    const answer = client.executor({ document: QUERY, context });
    await atNode;
    // The node holds its answer: a request ending now must not claim the node never saw it.
    expect([...context.reached]).toEqual(['reclassering']);
    answerHeld(held.shift()!);
    await expect(answer).resolves.toEqual({ data: { __typename: 'Query' } });
    context.deadline.dispose();
  });

  it('does not mark its node reached when the deadline passed before the first attempt', async () => {
    const client = clientFor();
    const context = callContext(0);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const failure = await Promise.resolve(client.executor({ document: QUERY, context })).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(NodeUnavailable);
    expect((failure as NodeUnavailable).reason).toBe('deadline passed');
    expect(context.reached.size).toBe(0);
    expect(held).toHaveLength(0);
    context.deadline.dispose();
  });

  it('does not mark its node reached when its circuit is open, and does for the trial call once the cool-down is over', async () => {
    let now = Date.now();
    const client = clientFor({ now: () => now });
    for (let failure = 0; failure < 5; failure++) client.breaker.failure();
    expect(client.breaker.state).toBe('open');

    const refused = callContext(5_000);
    const failure = await Promise.resolve(client.executor({ document: QUERY, context: refused })).catch((error: unknown) => error);
    expect((failure as NodeUnavailable).reason).toBe('circuit open');
    expect(refused.reached.size).toBe(0);
    refused.deadline.dispose();

    now += 6_000;
    const trial = callContext(5_000);
    const atNode = new Promise<void>((resolve) => (arrived = resolve));
    const answer = client.executor({ document: QUERY, context: trial });
    await atNode;
    expect([...trial.reached]).toEqual(['reclassering']);
    answerHeld(held.shift()!);
    await answer;
    expect(client.breaker.state).toBe('closed');
    trial.deadline.dispose();
  });

  it("counts a call cut off because its request was answered, or never sent for want of time, as no failure of the node's", async () => {
    const client = clientFor();
    for (let call = 0; call < 5; call++) {
      const context = callContext(5_000);
      const atNode = new Promise<void>((resolve) => (arrived = resolve));
      const answer = Promise.resolve(client.executor({ document: QUERY, context })).catch((error: unknown) => error);
      await atNode;
      // Another root field failed the request: it is answered while this call is under way.
      context.deadline.dispose();
      expect(await answer).toBeInstanceOf(NodeUnavailable);
    }
    for (let call = 0; call < 5; call++) {
      const context = callContext(0);
      await new Promise((resolve) => setTimeout(resolve, 2));
      expect(await Promise.resolve(client.executor({ document: QUERY, context })).catch((error: unknown) => error)).toBeInstanceOf(NodeUnavailable);
      context.deadline.dispose();
    }
    expect(client.breaker.state).toBe('closed');
  });

  it('counts a node that lets the deadline pass while it holds the answer, and opens its circuit after five', async () => {
    const client = clientFor();
    for (let call = 0; call < 5; call++) {
      const context = callContext(100);
      const failure = await Promise.resolve(client.executor({ document: QUERY, context })).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(NodeUnavailable);
      context.deadline.dispose();
    }
    expect(client.breaker.state).toBe('open');
  });

  it('counts no failure of the node for a call that left with less than half of the deadline, and the deadline then passed', async () => {
    // A caller who sends its body slowly, or a moment of the gateway's own overload, sends calls
    // out with little time left: five of them must not open a healthy partner's circuit.
    const client = clientFor();
    for (let call = 0; call < 5; call++) {
      const context = callContext(200);
      await new Promise((resolve) => setTimeout(resolve, 130));
      const failure = await Promise.resolve(client.executor({ document: QUERY, context })).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(NodeUnavailable);
      context.deadline.dispose();
    }
    expect(client.breaker.state).toBe('closed');
  });

  it('gives up at the deadline on a call that has no connection yet, instead of when one comes free', async () => {
    // One connection, held by the first call: the second waits in the pool's queue, where undici
    // has not yet handed over a way to abort it (as for a call still connecting to a lost host).
    const client = clientFor(systemClock, 1);
    const holder = callContext(20_000);
    const atNode = new Promise<void>((resolve) => (arrived = resolve));
    const first = Promise.resolve(client.executor({ document: QUERY, context: holder })).catch((error: unknown) => error);
    await atNode;
    const queued = callContext(200);
    const started = Date.now();
    const failure = await Promise.resolve(client.executor({ document: QUERY, context: queued })).catch((error: unknown) => error);
    const waited = Date.now() - started;
    expect(failure).toBeInstanceOf(NodeUnavailable);
    // Not the 20 s until the first call lets go: the deadline, and a loaded machine's slack.
    expect(waited).toBeLessThan(5_000);
    expect(held).toHaveLength(1);
    answerHeld(held.shift()!);
    expect(await first).toEqual({ data: { __typename: 'Query' } });
    holder.deadline.dispose();
    queued.deadline.dispose();
  });

  it('keeps a circuit open for its cool-down from now, not for as long as a clock stepped back', () => {
    let now = Date.parse('2026-06-01T12:00:00Z');
    const breaker = new CircuitBreaker({ now: () => now });
    for (let failure = 0; failure < 5; failure++) breaker.failure();
    now -= 3_600_000;
    expect(breaker.allow()).toBeNull();
    now += 5_000;
    expect(breaker.allow()).toBe('trial');
  });

  it('lets one trial call through an open circuit at a time, whatever calls from before it end meanwhile', () => {
    let now = Date.now();
    const breaker = new CircuitBreaker({ now: () => now });
    const before = breaker.allow();
    expect(before).toBe('call');
    for (let failure = 0; failure < 5; failure++) breaker.failure();
    now += 6_000;
    const trial = breaker.allow();
    expect(trial).toBe('trial');
    // The call let through before the circuit opened is cut off for its own request's sake.
    breaker.abandoned(before!);
    expect(breaker.allow()).toBeNull();
    breaker.abandoned(trial!);
    expect(breaker.allow()).toBe('trial');
  });

  it('gives up on an answer larger than 16 MiB as it arrives, and the node is UNAVAILABLE', async () => {
    const client = clientFor();
    const context = callContext(5_000);
    const atNode = new Promise<void>((resolve) => (arrived = resolve));
    const answer = Promise.resolve(client.executor({ document: QUERY, context })).catch((error: unknown) => error);
    await atNode;
    // A node answering without end: 1 MiB chunks, far more of them than the gateway will hold.
    const response = held.shift()!;
    response.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const writeMore = () => {
      while (sent < 64 && !response.destroyed) {
        sent++;
        if (!response.write(chunk)) return void response.once('drain', writeMore);
      }
      response.end();
    };
    writeMore();
    const failure = await answer;
    expect(failure).toBeInstanceOf(NodeUnavailable);
    expect((failure as NodeUnavailable).reason).toBe('AnswerTooLarge');
    // Cut off long before the node was done.
    expect(sent).toBeLessThan(64);
    context.deadline.dispose();
  });
});
