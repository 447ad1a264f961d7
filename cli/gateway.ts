import { gatewayConfigFromEnv } from '../gateway/config.ts';
import { startGateway } from '../gateway/start.ts';
import { stopOnSignal } from './signals.ts';
import { UsageError } from './usage.ts';

/** `soh gateway`: the gateway alone, production-style (dev issuer off unless SOH_DEV=1). */
export async function run(args: string[]): Promise<void> {
  // Settings come from the environment and SOH_GATEWAY_CONFIG only: `--port 4001` would otherwise start on 4000.
  if (args.length > 0) throw new UsageError('soh gateway (settings from SOH_* variables and SOH_GATEWAY_CONFIG)');
  const config = gatewayConfigFromEnv();
  const gateway = await startGateway(config);
  // Ready for signals before it says it is listening: whoever starts it may stop it on that line.
  stopOnSignal(() => gateway.close());
  console.log(`gateway listening on ${gateway.url}${config.dev ? ' (dev mode: dev issuer trusted, GraphiQL on)' : ''}`);
}
