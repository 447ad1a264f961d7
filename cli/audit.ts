import { dataDir } from '../lib/config.ts';
import { NODE_IDS } from '../lib/partners.ts';
import { componentLogs, verifyLog } from '../lib/audit/verify.ts';
import { parseOptions, UsageError } from './usage.ts';

/** `soh audit verify [--component C]`: exit 1 when any chain or head does not verify. */
export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, { component: { type: 'string' } }, true);
  if (positionals[0] !== 'verify' || positionals.length !== 1) throw new UsageError('soh audit verify [--component C]');
  // A misspelt component is a usage mistake (exit 2), never confused with a broken chain (exit 1).
  if (values.component && values.component !== 'gateway' && !(NODE_IDS as readonly string[]).includes(values.component)) {
    throw new UsageError(`--component must be gateway or one of ${NODE_IDS.join(', ')}`);
  }
  let logs = componentLogs(dataDir());
  if (values.component) logs = logs.filter((log) => log.component === values.component);
  if (logs.length === 0) {
    console.error(`soh audit verify: no audit log found${values.component ? ` for ${values.component}` : ''} under ${dataDir()}`);
    return 1;
  }
  let broken = 0;
  for (const log of logs) {
    const report = verifyLog(log);
    if (report.firstBreak) {
      broken++;
      console.log(`${report.component}: BROKEN at seq ${report.firstBreak.seq}: ${report.firstBreak.reason} (${report.records} records)`);
    } else {
      console.log(`${report.component}: ok, ${report.records} records, signed head at seq ${report.headSeq ?? 0}`);
    }
  }
  return broken > 0 ? 1 : 0;
}
