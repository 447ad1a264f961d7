import { createServer } from 'node:http';
import { Pool } from 'undici';
import { PARTNER_INFO } from '../../lib/partners.ts';
import { NODE_QUERY } from '../workload.ts';
import { nodeTokenReader } from '../node-token.ts';
import { firstRecord } from './first-record.ts';
import { benchEnv, listen } from './env.ts';

/**
 * The direct fan-out, the floor no gateway can beat: takes the Person request's variables, sends
 * the four node requests in parallel over keep-alive pools and returns their records side by side.
 * No GraphQL parsing, validation, authentication, policy or audit of its own. A failed node call
 * fails the whole request (502), as a stitching gateway answers it with errors.
 */
const { nodes, tokenFile, port } = benchEnv();
const token = nodeTokenReader(tokenFile);
const pools = PARTNER_INFO.map((info) => ({ field: info.personField, pool: new Pool(nodes[info.nodeId], { connections: 32 }) }));

const server = createServer(async (request, response) => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  try {
    const { variables } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { variables: { bsn: string; ref: string; at: string } };
    const body = JSON.stringify({ query: NODE_QUERY, variables: { bsns: [variables.bsn], refs: [variables.ref], at: variables.at } });
    const records = await Promise.all(pools.map(({ pool }) => firstRecord(pool, body, token())));
    const data = Object.fromEntries(pools.map(({ field }, index) => [field, records[index]]));
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data }));
  } catch {
    response.writeHead(502, { 'content-type': 'application/json' }).end('{"errors":[{"message":"fan-out failed"}]}');
  }
});
listen(server, port, 'fanout');
