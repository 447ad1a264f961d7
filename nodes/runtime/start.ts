import { join } from 'node:path';
import { z } from 'zod';
import { AuditLog } from '../../lib/audit/log.ts';
import { type Clock, systemClock } from '../../lib/clock.ts';
import { dataDir, keySetUrl, nonBlank, parseConfig, policyDir, port, settings } from '../../lib/config.ts';
import { loadOrCreateKeys, readJwksFile } from '../../lib/keys.ts';
import { loadPolicies } from '../../lib/policy/load.ts';
import { schemaShape } from '../../lib/schemas.ts';
import { startTelemetry } from '../../lib/telemetry.ts';
import { openStore } from '../store/open.ts';
import { holdServing, nodeHome } from '../store/serving.ts';
import type { NodeDefinition } from './definition.ts';
import { gatewayKeys, gatewayTokenVerifier } from './gateway-token.ts';
import { listen, startOrRelease, stopper } from '../../lib/http-server.ts';
import { createNodeApp } from './server.ts';

const nodeConfig = z.strictObject({
  port: port.optional(),
  host: nonBlank.default('127.0.0.1'),
  dataDir: z.string(),
  policyDir: z.string(),
  // Whoever can change the keys a node fetches can mint any caller's questions.
  gatewayJwksUrl: keySetUrl.default('http://127.0.0.1:4000/.well-known/jwks.json'),
  /** The gateway's JWKS as a file, for organisations that distribute keys out of band. */
  gatewayJwksFile: z.string().optional(),
  databaseUrl: z.string().startsWith('postgres').optional(),
  auditMaxBytes: z.coerce.number().int().positive().optional(),
});
export type NodeConfig = z.infer<typeof nodeConfig>;

/** Node settings from the environment: SOH_NODE_PORT, SOH_NODE_HOST, SOH_GATEWAY_JWKS_URL, SOH_NODE_DATABASE_URL, … */
export function nodeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const set = settings(env, Object.values(VARIABLES));
  return parseConfig(
    nodeConfig,
    {
      port: set.SOH_NODE_PORT,
      host: set.SOH_NODE_HOST,
      dataDir: dataDir(env),
      policyDir: policyDir(env),
      gatewayJwksUrl: set.SOH_GATEWAY_JWKS_URL,
      gatewayJwksFile: set.SOH_GATEWAY_JWKS_FILE,
      databaseUrl: set.SOH_NODE_DATABASE_URL,
      auditMaxBytes: set.SOH_AUDIT_MAX_BYTES,
    },
    'the environment (SOH_NODE_*)',
    VARIABLES,
  );
}

/** SOH_NODE_DATABASE_URL checked as `soh node` checks it, for the commands that open a node's store without starting it. */
export function nodeDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const { databaseUrl } = VARIABLES;
  return parseConfig(nodeConfig.pick({ databaseUrl: true }), { databaseUrl: settings(env, [databaseUrl])[databaseUrl] }, 'the environment (SOH_NODE_*)', { databaseUrl }).databaseUrl;
}

/** The environment variable behind each node setting. */
const VARIABLES = {
  port: 'SOH_NODE_PORT',
  host: 'SOH_NODE_HOST',
  gatewayJwksUrl: 'SOH_GATEWAY_JWKS_URL',
  gatewayJwksFile: 'SOH_GATEWAY_JWKS_FILE',
  databaseUrl: 'SOH_NODE_DATABASE_URL',
  auditMaxBytes: 'SOH_AUDIT_MAX_BYTES',
} as const;

/** How long a stopping node lets its requests in flight finish: each is one store lookup and one audit commit. */
const DRAIN_MS = 5_000;

export interface RunningNode {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts one organisation's node: store, audit log, release policy, token check, HTTP server. */
export async function startNode(definition: NodeDefinition, config: NodeConfig, clock: Clock = systemClock): Promise<RunningNode> {
  const home = nodeHome(config.dataDir, definition.id);
  const policies = loadPolicies(config.policyDir, { gateway: schemaShape('gateway'), node: schemaShape('node') });
  // An embedded store is a file of this data directory that `soh seed` would replace under us.
  const letGo = config.databaseUrl ? () => {} : holdServing(config.dataDir, definition.id);
  const store = await openStore(definition.id, home, config.databaseUrl).catch((error: unknown) => {
    letGo();
    throw error;
  });
  const auditFile = join(home, 'audit.db');
  let audit: AuditLog;
  try {
    const auditKeys = loadOrCreateKeys(join(home, 'keys'), `${definition.id}-audit`);
    audit = new AuditLog(auditFile, auditKeys[0]!, { maxBytes: config.auditMaxBytes, search: 'traces', heldKeys: auditKeys });
  } catch (error) {
    // Keys or a log that cannot be read, or a log that does not end where its signed head says: nothing stays held.
    await store.close();
    letGo();
    throw error;
  }
  const release = async () => {
    await audit.close();
    await store.close();
    letGo();
  };
  // A node that fails to start (port taken, bad JWKS file) leaves no audit thread or store open.
  const server = await startOrRelease(release, async () => {
    const app = createNodeApp({
      definition,
      store,
      policies,
      audit,
      auditFile,
      verifyToken: gatewayTokenVerifier({ nodeId: definition.id, keys: gatewayKeys(
          config.gatewayJwksFile ? { jwks: readJwksFile(config.gatewayJwksFile, 'SOH_GATEWAY_JWKS_FILE') } : { jwksUrl: config.gatewayJwksUrl },
        ), clock }),
      clock,
      tracer: startTelemetry(definition.id),
    });
    return listen(app, config.port ?? definition.defaultPort, config.host);
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${config.host}:${boundPort}`,
    port: boundPort,
    close: stopper(server, DRAIN_MS, release),
  };
}
