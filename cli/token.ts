import { dataDir, settings } from '../lib/config.ts';
import { existingDevIssuer, signDevToken } from '../lib/dev-issuer.ts';
import { parseOptions, positiveInt, UsageError } from './usage.ts';

/** `soh token`: a token from the local dev issuer, for a gateway running in dev mode (`npm start`). */
export async function run(args: string[]): Promise<number | void> {
  const { values } = parseOptions(args, {
    org: { type: 'string' },
    role: { type: 'string', multiple: true },
    purpose: { type: 'string' },
    'case-ref': { type: 'string' },
    ttl: { type: 'string' },
    sub: { type: 'string' },
  });
  if (!values.org || !values.role?.length || !values.purpose) {
    throw new UsageError('soh token --org O --role R [--role R2] --purpose P [--case-ref C] [--ttl SECONDS] [--sub S]');
  }
  // A key made here would be one no running gateway trusts: every token signed with it refused (401).
  if (!existingDevIssuer(dataDir())) {
    console.error(
      `soh token: no dev issuer under ${dataDir()}: start the federation first (npm start), and run soh token with the same SOH_DATA_DIR, or from the same directory; its gateway makes the issuer and trusts only that one`,
    );
    return 1;
  }
  const token = await signDevToken(dataDir(), {
    org: values.org,
    roles: values.role,
    purpose: values.purpose,
    ...(values['case-ref'] ? { caseRef: values['case-ref'] } : {}),
    ...(values.sub ? { sub: values.sub } : {}),
    // A day at most: the gateway refuses a token older than its maximum age (1 h by default) anyway.
    ttlSeconds: positiveInt(values.ttl, 'ttl', 900, 86_400),
    // The audience the gateway of this environment checks (DESIGN §4), as `soh gateway` reads it.
    audience: settings(process.env, ['SOH_GATEWAY_AUDIENCE']).SOH_GATEWAY_AUDIENCE ?? 'soh-gateway',
  });
  process.stdout.write(`${token}\n`);
}
