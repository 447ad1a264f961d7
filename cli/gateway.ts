import { gatewayConfigFromEnv } from '../gateway/config.ts';
import { startGateway } from '../gateway/start.ts';
import { stopOnSignal } from './signals.ts';

/** `soh gateway`: the gateway alone, production-style (dev issuer off unless SOH_DEV=1). */
export async function run(): Promise<void> {
  const config = gatewayConfigFromEnv();
  const gateway = await startGateway(config);
  console.log(`gateway listening on ${gateway.url}${config.dev ? ' (dev mode: dev issuer trusted, GraphiQL on)' : ''}`);
  stopOnSignal(() => gateway.close());
}
