import { type AddressInfo, connect } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { closeGracefully, listen } from '../lib/http-server.ts';

/** A server that answers each request after `delayMs` (never, when null). */
async function slowServer(delayMs: number | null) {
  const server = await listen((_request, response) => {
    if (delayMs !== null) setTimeout(() => response.end('answered'), delayMs);
  }, 0);
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
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

  it('answers the requests in flight, refuses new connections and then closes', async () => {
    const { server, url } = await slowServer(300);
    const inFlight = request(url, { dispatcher: keepAliveAgent() });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stopped = closeGracefully(server, 5_000);

    await expect(request(url, { dispatcher: keepAliveAgent() })).rejects.toThrow(/ECONNREFUSED/);
    const response = await inFlight;
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('answered');
    const started = Date.now();
    await stopped;
    // The keep-alive connection that carried the answer did not hold the stop for its 65 s.
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('answers a request that arrives on a connection already open, and closes that connection after it', async () => {
    const { server } = await slowServer(200);
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    const ask = () => socket.write('GET / HTTP/1.1\r\nhost: localhost\r\n\r\n');
    ask();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stopped = closeGracefully(server, 5_000);
    // Sent after the stop began, on the connection that is still busy with the first request.
    ask();
    await ended;
    await stopped;
    const responses = received.split('HTTP/1.1 ').slice(1);
    expect(responses).toHaveLength(2);
    expect(responses.every((response) => response.startsWith('200') && response.endsWith('answered'))).toBe(true);
    expect(responses[1]).toMatch(/^connection: close\r$/im);
  });

  it('cuts a request still running after the grace period', async () => {
    const { server, url } = await slowServer(null);
    const hanging = request(url, { dispatcher: keepAliveAgent() }).catch((error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const started = Date.now();
    await closeGracefully(server, 300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await hanging).toBeInstanceOf(Error);
  });
});
