import { join } from 'node:path';
import { AuditLog } from '../lib/audit/log.ts';
import { type Clock, systemClock } from '../lib/clock.ts';
import { DEV_ISSUER, devIssuerJwks } from '../lib/dev-issuer.ts';
import { loadOrCreateSecret } from '../lib/keys.ts';
import { PARTNER_INFO, type Partner } from '../lib/partners.ts';
import { loadPolicies } from '../lib/policy/load.ts';
import { schemaShape } from '../lib/schemas.ts';
import { subjectRefs } from '../lib/subject-ref.ts';
import { startTelemetry } from '../lib/telemetry.ts';
import { listen, startOrRelease, stopper } from '../lib/http-server.ts';
import { callerTokenVerifier, issuerKeys, type TrustedIssuer } from './auth/caller-token.ts';
import { DownstreamTokens } from './auth/downstream-token.ts';
import { GatewayKeys } from './auth/gateway-keys.ts';
import { DRAIN_MARGIN_MS, type GatewayConfig } from './config.ts';
import { NodeClient } from './federation/node-client.ts';
import { type BucketLimit, type RateLimiter, TokenBuckets } from './rate-limits.ts';
import { createGateway } from './server.ts';
import { RateLimitStore, SharedTokenBuckets } from './shared-rate-limits.ts';
import { useAuditViewer } from './audit/viewer.ts';
import { createLocalJWKSet } from 'jose';



export interface RunningGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Starts the gateway from its configuration: keys, policies, node clients, audit log, HTTP. */
export async function startGateway(config: GatewayConfig, clock: Clock = systemClock): Promise<RunningGateway> {
  const home = join(config.dataDir, 'gateway');
  const policies = loadPolicies(config.policyDir, { gateway: schemaShape('gateway'), node: schemaShape('node') });
  const keys = new GatewayKeys(config.dataDir);
  const tracer = startTelemetry('gateway');
  const tokens = new DownstreamTokens(keys, clock);
  const clients = new Map<Partner, NodeClient>(
    PARTNER_INFO.map((info) => [info.partner, new NodeClient(info.nodeId, config.nodes[info.nodeId], { tokens, tracer, clock, connections: config.nodeConnections })]),
  );
  const issuers: TrustedIssuer[] = config.issuers.map((entry) => ({
    issuer: entry.issuer,
    orgs: entry.orgs,
    keys: issuerKeys(entry, config.deadlineMs),
    acceptJwtTyp: entry.acceptJwtTyp,
  }));
  if (config.dev) {
    issuers.push({ issuer: DEV_ISSUER, orgs: ['*'], keys: createLocalJWKSet(devIssuerJwks(config.dataDir) as never), acceptJwtTyp: false });
  }
  const auditFile = join(home, 'audit.db');
  const audit = new AuditLog(auditFile, keys.signing, { maxBytes: config.auditMaxBytes, heldKeys: keys.all });
  const { redisUrl, keyPrefix } = config.rateLimits;
  const redis = redisUrl ? new RateLimitStore(redisUrl, clock, reportRateLimitStore) : null;
  // A replica that comes up shares its limits from its first request, unless Redis cannot be had within a second.
  await redis?.firstConnection;
  const limiter = (name: string, limit: BucketLimit): RateLimiter =>
    redis ? new SharedTokenBuckets(redis, limit, `${keyPrefix}${name}:`, clock) : new TokenBuckets(limit, clock);
  const release = async () => {
    await Promise.all([...clients.values()].map((client) => client.close()));
    redis?.close();
    await audit.close();
  };
  // A gateway that fails to start (port taken, bad key file) leaves no audit thread or pool behind.
  const server = await startOrRelease(release, async () => {
    const subjectRef = subjectRefs(loadOrCreateSecret(join(home, 'subject-ref.key')));
    const gateway = createGateway({
      policies,
      clients,
      keys,
      audit,
      auditFile,
      verifyCaller: callerTokenVerifier(issuers, config, clock),
      subjectRef,
      clock,
      tracer,
      dev: config.dev,
      deadlineMs: config.deadlineMs,
      rateLimiters: {
        perCaller: limiter('caller', config.rateLimits.perCaller),
        perSubject: limiter('subject', config.rateLimits.perSubject),
        locationChecks: limiter('location', config.rateLimits.locationChecks),
      },
      routes: [useAuditViewer()],
      benchmarkDisable: config.benchmarkDisable,
    });
    return listen(gateway, config.port, config.host);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return {
    url: `http://${config.host}:${port}`,
    port,
    // A request in flight ends by its deadline; its audit commit follows within the margin.
    close: stopper(server, config.deadlineMs + DRAIN_MARGIN_MS, release),
  };
}

/** One line when the shared rate-limit store fails and one when it answers again (RateLimitStore reports each change once). */
function reportRateLimitStore(up: boolean, reason?: string): void {
  console.error(up ? 'rate limits: counted in Redis, shared by every replica' : `rate limits: Redis unavailable (${reason}); counting in this replica until it answers again`);
}
