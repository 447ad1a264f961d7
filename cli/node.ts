import { isNodeId, NODE_IDS } from '../lib/partners.ts';
import { NODES } from '../nodes/registry.ts';
import { nodeConfigFromEnv, startNode } from '../nodes/runtime/start.ts';
import { stopOnSignal } from './signals.ts';
import { UsageError } from './usage.ts';

/** `soh node <org>`: one organisation's node alone. */
export async function run(args: string[]): Promise<void> {
  const [id] = args;
  // Settings come from the environment only: `--port 5000` would otherwise start on the default port.
  if (!id || !isNodeId(id) || args.length !== 1) throw new UsageError(`soh node <${NODE_IDS.join('|')}> (settings from SOH_* variables)`);
  const node = await startNode(NODES[id], nodeConfigFromEnv());
  console.log(`node ${id} listening on ${node.url}`);
  stopOnSignal(() => node.close());
}
