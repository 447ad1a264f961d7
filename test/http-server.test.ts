import { type AddressInfo, connect } from 'node:net';
import type { Server } from 'node:http';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { closeGracefully, listen } from '../lib/http-server.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A raw HTTP/1.1 response that tells the client to close the connection. */
const SAYS_CLOSE = /^connection: close\r$/im;

/**
 * A server that answers each request after `delayMs` (never, when null), and whose handler goes
 * on for `workAfterMs` more before it settles, as yoga's does while it writes an audit record.
 * `arrived` resolves once the first request reached the handler.
 */
async function slowServer(delayMs: number | null, workAfterMs = 0) {
  let arrive!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const finishedWork: number[] = [];
  const server = await listen(async (_request, response) => {
    arrive();
    if (delayMs === null) await sleep(workAfterMs);
    else {
      await sleep(delayMs);
      response.end('answered');
      await sleep(workAfterMs);
    }
    finishedWork.push(Date.now());
  }, 0);
  return { server, arrived, finishedWork, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Raw HTTP/1.1 on one connection, to see exactly what the server sends back. */
function rawConnection(server: Server) {
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return {
    ask: () => socket.write('GET / HTTP/1.1\r\nhost: localhost\r\n\r\n'),
    responses: async () => {
      await ended;
      return received.split('HTTP/1.1 ').slice(1);
    },
  };
}

describe('stopping a server (closeGracefully)', () => {
  const agents: Agent[] = [];
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.close()));
  });
  function keepAliveAgent() {
    const agent = new Agent({ keepAliveTimeout: 60_000 });
    agents.push(agent);
    return agent;
  }

  it('answers the requests in flight, refuses new connections meanwhile, and then closes', async () => {
    const { server, url, arrived } = await slowServer(300);
    const inFlight = request(url, { dispatcher: keepAliveAgent() });
    await arrived;
    const stopped = closeGracefully(server, 5_000);

    await expect(request(url, { dispatcher: keepAliveAgent() })).rejects.toThrow(/ECONNREFUSED/);
    const response = await inFlight;
    expect(response.statusCode).toBe(200);
    // Asked before the stop, answered after it: the client is told not to send more on this connection.
    expect(response.headers['connection']).toBe('close');
    expect(await response.body.text()).toBe('answered');
    const started = Date.now();
    await stopped;
    // The keep-alive connection that carried the answer did not hold the stop for its 65 s.
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('closes the connection of a request in flight after its answer, which says so', async () => {
    const { server, arrived } = await slowServer(200);
    const connection = rawConnection(server);
    connection.ask();
    await arrived;
    const started = Date.now();
    const stopped = closeGracefully(server, 5_000);
    const responses = await connection.responses();
    await stopped;
    expect(responses).toHaveLength(1);
    expect(responses[0]).toMatch(/^200 /);
    expect(responses[0]).toMatch(SAYS_CLOSE);
    expect(responses[0]!.endsWith('answered')).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('answers a request that arrives on a busy connection after the stop, and only the last answer closes it', async () => {
    const { server, arrived } = await slowServer(200);
    const connection = rawConnection(server);
    connection.ask();
    await arrived;
    const stopped = closeGracefully(server, 5_000);
    connection.ask();
    const responses = await connection.responses();
    await stopped;
    expect(responses).toHaveLength(2);
    expect(responses.every((response) => response.startsWith('200') && response.endsWith('answered'))).toBe(true);
    expect(responses[0]).not.toMatch(SAYS_CLOSE);
    expect(responses[1]).toMatch(SAYS_CLOSE);
  });

  it('answers requests queued on one connection before the stop, and only the last answer closes it', async () => {
    const { server, arrived } = await slowServer(200);
    const connection = rawConnection(server);
    connection.ask();
    connection.ask();
    await arrived;
    await sleep(20); // the second request is parsed and waiting behind the first
    const stopped = closeGracefully(server, 5_000);
    const responses = await connection.responses();
    await stopped;
    expect(responses).toHaveLength(2);
    expect(responses.every((response) => response.startsWith('200') && response.endsWith('answered'))).toBe(true);
    expect(responses[1]).toMatch(SAYS_CLOSE);
  });

  it('cuts a request still running after the grace period, and still waits for its handler to settle', async () => {
    const { server, url, arrived, finishedWork } = await slowServer(null, 450);
    const hanging = request(url, { dispatcher: keepAliveAgent() }).catch((error: Error) => error);
    await arrived;
    const started = Date.now();
    await closeGracefully(server, 300);
    expect(await hanging).toBeInstanceOf(Error);
    // Cut at 300 ms, but the handler's own work (an audit record, in ours) ends before the stop does.
    expect(finishedWork).toHaveLength(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('waits for a handler that goes on after its answer', async () => {
    const { server, url, arrived, finishedWork } = await slowServer(100, 400);
    const answered = request(url, { dispatcher: keepAliveAgent() });
    await arrived;
    await closeGracefully(server, 5_000);
    expect((await answered).statusCode).toBe(200);
    expect(finishedWork).toHaveLength(1);
  });

  it('gives up on a handler that never settles one grace period after the cut', async () => {
    let arrive!: () => void;
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    const server = await listen(() => {
      arrive();
      return new Promise(() => undefined);
    }, 0);
    const hanging = request(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { dispatcher: keepAliveAgent() }).catch((error: Error) => error);
    await arrived;
    const started = Date.now();
    await closeGracefully(server, 200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await hanging).toBeInstanceOf(Error);
  });
});

describe('a client that sends its request slowly', () => {
  it('gets 408 and its connection closed once the request timeout passes, instead of holding the socket for minutes', async () => {
    let reachedHandler = false;
    const server = await listen(
      async (request, response) => {
        reachedHandler = true;
        try {
          for await (const _chunk of request);
          response.end('read it all');
        } catch {
          // The server cut the connection: the body never came whole.
        }
      },
      0,
      '127.0.0.1',
      { requestTimeoutMs: 500 },
    );
    try {
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      let received = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      // All but the last byte of the declared body.
      socket.write('POST / HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n' + 'x'.repeat(99));
      const started = Date.now();
      await closed;
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
      expect(reachedHandler).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
