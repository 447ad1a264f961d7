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
  // Ready for signals before it says it is listening: whoever starts it may stop it on that line.
  stopOnSignal(() => node.close());
  console.log(`node ${id} listening on ${node.url}`);
}
