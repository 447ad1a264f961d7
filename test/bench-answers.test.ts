import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAll, startProcess, stopProcess } from '../bench/federation.ts';
import { firstRecord } from '../bench/targets/first-record.ts';
import { answersKnownSubject, failedAnswer } from '../bench/workload.ts';

const CONTACT = { contact: { organisation: 'Politie', unit: null, phone: null, email: null } };

describe("the direct fan-out's node call", () => {
  // A stand-in for a node on loopback: answers with the status and body the request body names.
  const answers: Record<string, [status: number, body: unknown]> = {
    record: [200, { data: { records: [CONTACT] } }],
    unknown: [200, { data: { records: [null] } }],
    refused: [401, { errors: [{ message: 'no valid token' }] }],
    errors: [200, { data: null, errors: [{ message: 'Every subject reference must be one' }] }],
  };
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer(async (request, response) => {
      let asked = '';
      for await (const chunk of request) asked += String(chunk);
      const [status, body] = answers[asked]!;
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const ask = async (answer: keyof typeof answers) => {
    const pool = new Pool(url);
    try {
      return await firstRecord(pool, answer, 'token');
    } finally {
      await pool.close();
    }
  };

  it('fails, rather than read as "no record", when the node refuses or answers with errors', async () => {
    await expect(ask('refused')).rejects.toThrow(/HTTP 401/);
    await expect(ask('errors')).rejects.toThrow(/HTTP 200/);
    // And otherwise returns the node's record, or null where the node does not know the person.
    expect(await ask('record')).toEqual(CONTACT);
    expect(await ask('unknown')).toBeNull();
  });
});

describe("the benchmark's answer checks", () => {
  it('counts errors, refusals and incomplete answers as failed requests', () => {
    expect(failedAnswer(200, '{"data":{"hitCheck":{"complete":true,"anyHit":true}}}')).toBe(false);
    expect(failedAnswer(502, '{"errors":[{"message":"fan-out failed"}]}')).toBe(true);
    expect(failedAnswer(200, '{"errors":[{"message":"x"}],"data":null}')).toBe(true);
    // Our gateway with a node that did not answer: the baselines answer that with errors.
    expect(failedAnswer(200, '{"data":{"hitCheck":{"complete":false,"anyHit":null}}}')).toBe(true);
  });

  it("wants a node's record for a known subject from the stitched Person, as a list or as the record itself", () => {
    const none = { politie: [null], veiligThuis: [null], om: [null], reclassering: [null] };
    expect(answersKnownSubject('person', none)).toBe(false);
    expect(answersKnownSubject('person', { ...none, om: [CONTACT] })).toBe(true);
    expect(answersKnownSubject('person', { politie: null, veiligThuis: null, om: null, reclassering: null })).toBe(false);
    expect(answersKnownSubject('person', { politie: null, veiligThuis: CONTACT, om: null, reclassering: null })).toBe(true);
  });

  it('wants a complete hit check with a hit, and a complete ban check, for a known subject', () => {
    expect(answersKnownSubject('hitCheck', { hitCheck: { complete: true, anyHit: true } })).toBe(true);
    expect(answersKnownSubject('hitCheck', { hitCheck: { complete: true, anyHit: false } })).toBe(false);
    expect(answersKnownSubject('hitCheck', { hitCheck: { complete: false, anyHit: null } })).toBe(false);
    expect(answersKnownSubject('activeBans', { activeBans: { complete: true, underActiveBan: false } })).toBe(true);
    expect(answersKnownSubject('activeBans', { activeBans: { complete: false, underActiveBan: null } })).toBe(false);
  });
});

describe('starting the benchmark processes', () => {
  it('stops the ones that started when another fails', async () => {
    const alive = startProcess('alive', process.execPath, ['-e', "console.log('up'); setInterval(() => {}, 1000)"], { env: process.env, ready: /up/, url: 'http://127.0.0.1:1' });
    const dying = startProcess('dying', process.execPath, ['-e', 'setTimeout(() => process.exit(3), 200)'], { env: process.env, ready: /never/ });
    try {
      await expect(startAll([alive, dying])).rejects.toThrow(/dying exited with 3/);
      const { child } = await alive;
      expect(child.exitCode !== null || child.signalCode !== null).toBe(true);
    } finally {
      await stopProcess(await alive);
    }
  });
});
