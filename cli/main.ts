import { AuditHeadError } from '../lib/audit/writer.ts';
import { ConfigError, unknownSettings } from '../lib/config.ts';
import { PolicyFileError } from '../lib/policy/load.ts';
import { StoreInUseError } from '../nodes/store/serving.ts';
import { UsageError } from './usage.ts';

/** `soh <command>`: each command is a small module; this file only dispatches. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(args: string[]): Promise<number | void> }> }> = {
  up: { summary: 'start the four nodes and the gateway locally (dev mode, synthetic data)', load: () => import('./up.ts') },
  gateway: { summary: 'run the gateway (configured by SOH_* env / SOH_GATEWAY_CONFIG)', load: () => import('./gateway.ts') },
  node: { summary: 'run one node: soh node <politie|veilig-thuis|om|reclassering>', load: () => import('./node.ts') },
  token: { summary: 'print a dev-issuer token: --org O --role R --purpose P [--case-ref C] [--ttl S]', load: () => import('./token.ts') },
  seed: { summary: '(re)generate synthetic data for all nodes: [--persons N] [--seed S]', load: () => import('./seed.ts') },
  import: { summary: "load NDJSON records into one node's store: soh import <node> FILE.ndjson", load: () => import('./import.ts') },
  audit: { summary: 'verify audit chains and signed heads: soh audit verify [--component C]', load: () => import('./audit.ts') },
  policy: { summary: 'soh policy check | soh policy explain [--purpose P]', load: () => import('./policy.ts') },
  bench: { summary: 'benchmark the gateway against baselines (README, Benchmark)', load: () => import('../bench/run.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  return ['usage: soh <command> [options]', '', ...Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`)].join('\n');
}

const [name, ...args] = process.argv.slice(2);
// Own names only: `soh constructor` is no command, whatever Object.prototype holds.
const command = name && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
if (!command) {
  // Asked for, the usage is the answer (stdout, exit 0); anything else is a mistake (stderr, exit 2),
  // so that a script calling `soh` with a variable left empty does not carry on as if it ran.
  const asked = name === '--help' || name === 'help';
  (asked ? console.log : console.error)(usage());
  process.exit(asked ? 0 : 2);
}
for (const unknown of unknownSettings(process.env)) console.error(`soh ${name}: ${unknown} is not a setting (misspelt?); it is ignored`);
try {
  const code = await (await command.load()).run(args);
  if (typeof code === 'number') process.exitCode = code;
} catch (error) {
  if (error instanceof PolicyFileError || error instanceof ConfigError || error instanceof UsageError || error instanceof StoreInUseError || error instanceof AuditHeadError) {
    console.error(`soh ${name}: ${error.message}`);
    process.exit(error instanceof UsageError ? 2 : 1);
  }
  // What the machine refused (a port taken, a host or database that is not there): its own words
  // name the address or database, and no stack trace is needed to act on them.
  if (isEnvironmentError(error)) {
    console.error(`soh ${name}: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

/** An operating-system error (it names its system call) or a PostgreSQL server's refusal (it has a severity). */
function isEnvironmentError(error: unknown): error is Error {
  if (!(error instanceof Error) || typeof (error as { code?: unknown }).code !== 'string') return false;
  return 'syscall' in error || 'severity' in error;
}
