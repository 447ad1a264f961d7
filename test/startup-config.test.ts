import { execFile, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { unknownSettings } from '../lib/config.ts';
import { devIssuerKeys } from '../lib/dev-issuer.ts';
import { createKeyFile } from '../lib/keys.ts';
import { serviceEnv } from '../lib/project.ts';

const SOH = fileURLToPath(new URL('../bin/soh.js', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'soh-startup-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

/** Starts a component with a bad setting; it must stop at once, naming the setting, without a stack trace. */
function startWith(args: string[], env: Record<string, string>) {
  const result = spawnSync(process.execPath, [SOH, ...args], {
    env: { ...process.env, SOH_DATA_DIR: home, SOH_NODE_PORT: '0', SOH_GATEWAY_PORT: '0', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("the gateway's keys reach the nodes whole and unaltered", () => {
  it.each(['http://gateway.example/.well-known/jwks.json', 'ftp://127.0.0.1/jwks.json', '127.0.0.1:4000/.well-known/jwks.json'])('a node refuses SOH_GATEWAY_JWKS_URL=%s: keys come over https, or http only on this machine', (url) => {
    const { status, stderr } = startWith(['node', 'om'], { SOH_GATEWAY_JWKS_URL: url });
    expect(status).toBe(1);
    expect(stderr).toContain('SOH_GATEWAY_JWKS_URL');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('the gateway refuses two key files holding the same kid, which would have every node refuse its tokens', () => {
    const dataDir = mkdtempSync(join(home, 'twin-keys-'));
    const keys = join(dataDir, 'gateway', 'keys');
    const key = createKeyFile(keys, 'gateway');
    copyFileSync(join(keys, `${key.kid}.private.jwk.json`), join(keys, `backup-${key.kid}.private.jwk.json`));
    const { status, stderr } = startWith(['gateway'], { SOH_DATA_DIR: dataDir, SOH_DEV: '1' });
    expect(status).toBe(1);
    expect(stderr).toContain(`hold the same kid ${key.kid}`);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a node refuses to start on a bad gateway JWKS file', () => {
  it('names SOH_GATEWAY_JWKS_FILE when the file does not exist', () => {
    const { status, stderr } = startWith(['node', 'om'], { SOH_GATEWAY_JWKS_FILE: join(home, 'missing.json') });
    expect(status).toBe(1);
    expect(stderr).toContain('SOH_GATEWAY_JWKS_FILE');
    expect(stderr).toContain('does not exist');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('names SOH_GATEWAY_JWKS_FILE when the file is not a JWKS document', () => {
    const notJson = join(home, 'not-json.json');
    writeFileSync(notJson, '{ "keys": ');
    const noKeys = join(home, 'no-keys.json');
    writeFileSync(noKeys, '{ "keys": [] }');
    for (const [file, reason] of [[notJson, 'not readable JSON'], [noKeys, 'not a JWKS document']] as const) {
      const { status, stderr } = startWith(['node', 'om'], { SOH_GATEWAY_JWKS_FILE: file });
      expect(status).toBe(1);
      expect(stderr).toContain(reason);
      expect(stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('the gateway refuses to start on a bad issuer JWKS file', () => {
  it("names the issuer whose jwksFile cannot be read", () => {
    const config = join(home, 'gateway.json');
    writeFileSync(config, JSON.stringify({ issuers: [{ issuer: 'https://idp.politie.example', orgs: ['politie'], jwksFile: join(home, 'absent-jwks.json') }] }));
    const { status, stderr } = startWith(['gateway'], { SOH_GATEWAY_CONFIG: config });
    expect(status).toBe(1);
    expect(stderr).toContain('https://idp.politie.example');
    expect(stderr).toContain('does not exist');
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('a component refuses a bad or empty setting, and a refusal of the machine, in one line that names it', () => {
  it.each([
    ['gateway', 'SOH_DEV', 'yes'],
    ['gateway', 'SOH_DEADLINE_MS', 'soon'],
    ['gateway', 'SOH_NODE_URL_OM', 'not a url'],
    ['gateway', 'SOH_RATE_LIMIT_REDIS_URL', 'http://127.0.0.1:6379'],
    ['node', 'SOH_NODE_PORT', '70000'],
    ['node', 'SOH_NODE_DATABASE_URL', 'mysql://127.0.0.1/soh'],
    // A quota its log is past already: it would start ready and fail closed at the first record.
    ['node', 'SOH_AUDIT_MAX_BYTES', '1'],
    ['gateway', 'SOH_AUDIT_MAX_BYTES', '1024'],
  ])('the %s names %s=%s', (component, variable, value) => {
    const { status, stderr } = startWith(component === 'node' ? ['node', 'om'] : ['gateway'], { SOH_DEV: '1', [variable]: value });
    expect(status).toBe(1);
    expect(stderr).toContain(variable);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['gateway', 'SOH_GATEWAY_PORT'],
    ['gateway', 'SOH_GATEWAY_HOST'],
    ['gateway', 'SOH_RATE_LIMIT_REDIS_URL'],
    ['gateway', 'SOH_DATA_DIR'],
    ['gateway', 'SOH_GATEWAY_CONFIG'],
    ['node', 'SOH_NODE_PORT'],
    ['node', 'SOH_NODE_HOST'],
    ['node', 'SOH_DATA_DIR'],
    ['node', 'SOH_POLICY_DIR'],
  ])('the %s refuses %s set to nothing (not a random port, not every interface, not the working directory)', (component, variable) => {
    const { status, stderr } = startWith(component === 'node' ? ['node', 'om'] : ['gateway'], { [variable]: '', SOH_DEV: '1' });
    expect(status).toBe(1);
    expect(stderr).toContain(`${variable} is set but empty`);
  });

  it.each([
    ['a caseRefPattern that is no regular expression', 'caseRefPattern: "["\n', /caseRefPattern: must be a regular expression/],
    ['nodes that are no mapping, which would leave every default node URL in place', 'nodes: 5\n', /nodes: must be a mapping/],
    ['an empty rateLimits section', 'rateLimits:\n', /rateLimits: must be a mapping/],
    ['a node URL that is not http(s)', 'nodes:\n  om: ftp://om.example/\n', /nodes\.om.*must be an http:\/\/ or https:\/\/ URL/],
    [
      'an issuer listed twice, whose second entry would take the first one\'s place',
      'issuers:\n  - { issuer: https://idp.example, orgs: [politie], jwksUrl: https://idp.example/jwks }\n  - { issuer: https://idp.example, orgs: ["*"], jwksUrl: https://other.example/jwks }\n',
      /issuers: each issuer may be listed once/,
    ],
    [
      'a per-subject bucket smaller than one request may take, which would refuse it forever',
      'rateLimits:\n  perSubject: { burst: 3, perMinute: 6 }\n',
      /rateLimits\.perSubject\.burst: must be at least 4/,
    ],
    ['a rate so slow that its Retry-After could not be written', 'rateLimits:\n  perCaller: { burst: 5, perMinute: 1.0e-20 }\n', /rateLimits\.perCaller\.perMinute/],
    [
      "an issuer's key set over plain http from another machine, which anyone on the way could swap",
      'issuers:\n  - { issuer: https://idp.politie.example, orgs: [politie], jwksUrl: http://idp.politie.example/jwks }\n',
      /issuers\.0\.jwksUrl: must be an https:\/\/ URL/,
    ],
    ["an issuer's key set from a file: URL", 'issuers:\n  - { issuer: https://idp.example, orgs: [politie], jwksUrl: "file:///etc/passwd" }\n', /issuers\.0\.jwksUrl: must be an https:\/\/ URL/],
    ['an empty host, which would listen on every interface', 'host: ""\n', /host \(SOH_GATEWAY_HOST\): must not be empty/],
    ['a blank audience', 'audience: " "\n', /audience \(SOH_GATEWAY_AUDIENCE\): must not be empty/],
    ['an empty caseRefPattern, which would match any case_ref', 'caseRefPattern: ""\n', /caseRefPattern: must not be empty/],
    ['a maximum token age of years, which would be none', 'maxTokenAgeSeconds: 999999999\n', /maxTokenAgeSeconds/],
    ['a token limit past what Node reads of all headers together', 'maxTokenBytes: 16384\n', /maxTokenBytes/],
    ['a data directory, which only SOH_DATA_DIR sets', 'dataDir: /var/lib/soh\n', /dataDir: is set by SOH_DATA_DIR only/],
    ['dev mode, which only SOH_DEV sets', 'dev: true\n', /dev: is set by SOH_DEV only/],
    ['switching audit off, which only SOH_BENCH_DISABLE sets', 'benchmarkDisable: [purpose, audit]\n', /benchmarkDisable: is set by SOH_BENCH_DISABLE only/],
  ])('the gateway names %s in its configuration file', (_name, yaml, reason) => {
    const file = join(home, `gateway-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, yaml);
    const { status, stderr } = startWith(['gateway'], { SOH_GATEWAY_CONFIG: file });
    expect(status).toBe(1);
    expect(stderr).toMatch(reason);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('names the policy directory that is not there', () => {
    const { status, stderr } = startWith(['node', 'om'], { SOH_POLICY_DIR: join(home, 'no-policies') });
    expect(status).toBe(1);
    expect(stderr).toContain('SOH_POLICY_DIR');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('says in one line that its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((taken.address() as AddressInfo).port);
      const result = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        execFile(process.execPath, [SOH, 'node', 'om'], { env: { ...process.env, SOH_DATA_DIR: home, SOH_NODE_PORT: port } }, (error, _stdout, stderr) =>
          resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
        );
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('EADDRINUSE');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    } finally {
      taken.close();
    }
  });
});

describe('the standard OTEL_* settings are checked like every other', () => {
  it.each([
    ['OTEL_TRACES_SAMPLER', 'parentbased_traceidratioo'],
    ['OTEL_TRACES_SAMPLER_ARG', '10%'],
    ['OTEL_TRACES_SAMPLER_ARG', '1.5'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', 'localhost:4318'],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'ftp://127.0.0.1/v1/traces'],
  ])('a node refuses %s=%j, naming it, instead of sampling all or sending elsewhere', (name, value) => {
    const { status, stderr } = startWith(['node', 'om'], { [name]: value });
    expect(status).toBe(1);
    expect(stderr).toContain(name);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('command lines', () => {
  it('soh without a command is a usage error (exit 2, stderr); asked for help, the same list is the answer (exit 0, stdout)', () => {
    const bare = startWith([], {});
    expect(bare.status).toBe(2);
    expect(bare.stderr).toContain('usage: soh <command>');
    const help = startWith(['--help'], {});
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: soh <command>');
    expect(startWith(['frobnicate'], {}).status).toBe(2);
    // A name Object.prototype holds is no command either: a usage error, not a stack trace.
    for (const name of ['constructor', 'toString', '__proto__']) {
      const inherited = startWith([name], {});
      expect(inherited.status).toBe(2);
      expect(inherited.stderr).toContain('usage: soh <command>');
    }
  });

  it.each([
    [['policy', 'explain', 'vt-hit-check'], 'soh policy check | soh policy explain [--purpose P]'],
    [['policy', 'check', '--purpose', 'vt-hit-check'], 'soh policy check | soh policy explain [--purpose P]'],
    [['audit', 'verify', '--component', 'politei'], '--component must be gateway or one of politie, veilig-thuis, om, reclassering'],
    [['up', '--persons', '10000001'], '--persons must be at most 10,000,000'],
  ])('soh %j is a usage error (exit 2), never taken for something else', (args, message) => {
    // Ports soh up would accept: the refusal must be the one the case is about.
    const { status, stderr, stdout } = startWith(args, { SOH_GATEWAY_PORT: '4999', SOH_NODE_PORT: '4998' });
    expect(status).toBe(2);
    expect(stderr).toContain(message);
    expect(stdout).toBe('');
  });

  it.each([
    [['node', 'om', '--port', '5000'], 'soh node <'],
    [['gateway', '--port', '4001'], 'soh gateway (settings from SOH_* variables'],
  ])('soh %j refuses arguments it would ignore, with a usage error, instead of starting on another port', (args, usage) => {
    const { status, stderr } = startWith(args, {});
    expect(status).toBe(2);
    expect(stderr).toContain(usage);
  });

  it("soh token signs for the audience the gateway checks (SOH_GATEWAY_AUDIENCE), for at most a day, and only once a gateway made the dev issuer", () => {
    const dir = mkdtempSync(join(tmpdir(), 'soh-token-'));
    const token = (extra: string[], env: Record<string, string>) =>
      spawnSync(process.execPath, [SOH, 'token', '--org', 'politie', '--role', 'politie-medewerker', '--purpose', 'police-ban-enforcement', ...extra], {
        env: { ...process.env, SOH_DATA_DIR: dir, ...env },
        encoding: 'utf8',
      });
    // Before any gateway made the dev issuer: a key made now would be one no gateway trusts.
    const early = token([], {});
    expect(early.status).toBe(1);
    expect(early.stderr).toContain(`no dev issuer under ${dir}: start the federation first (npm start)`);
    expect(early.stdout).toBe('');
    expect(existsSync(join(dir, 'dev-issuer'))).toBe(false);
    devIssuerKeys(dir);
    const signed = token([], { SOH_GATEWAY_AUDIENCE: 'soh-gateway-acc' });
    expect(signed.status).toBe(0);
    expect(decodeJwt(signed.stdout.trim()).aud).toBe('soh-gateway-acc');
    expect(decodeJwt(token([], {}).stdout.trim()).aud).toBe('soh-gateway');
    const tooLong = token(['--ttl', '99999999999999999999'], {});
    expect(tooLong.status).toBe(2);
    expect(tooLong.stderr).toContain('--ttl must be at most 86,400');
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('a SOH_* variable that nothing reads', () => {
  it('is named, as a likely misspelling, by every soh command, which goes on', () => {
    const result = spawnSync(process.execPath, [SOH, 'policy', 'check'], {
      env: { ...process.env, SOH_DATA_DIR: home, SOH_NODE_DATABSE_URL: 'postgres://127.0.0.1/soh', SOH_NODE_URL_POLITIE: 'http://127.0.0.1:4101' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('SOH_NODE_DATABSE_URL is not a setting (misspelt?); it is ignored');
    expect(result.stderr).not.toContain('SOH_NODE_URL_POLITIE');
  });

  it('is told apart from every variable some part of the project reads', () => {
    const known = ['SOH_DATA_DIR', 'SOH_NODE_DATABASE_URL', 'SOH_NODE_PORT_VEILIG_THUIS', 'SOH_NODE_URL_RECLASSERING', 'SOH_BENCH_NODES', 'SOH_TEST_PG_ADMIN_URL', 'SOH_RATE_LIMIT_REDIS_URL', 'SOH_TEST_REDIS_URL'];
    const env = Object.fromEntries([...known, 'SOH_NODE_PORT_KMAR', 'SOH_GATEWAY_PROT', 'PATH'].map((name) => [name, 'x']));
    expect(unknownSettings(env)).toEqual(['SOH_GATEWAY_PROT', 'SOH_NODE_PORT_KMAR']);
  });
});

describe('a component run alone', () => {
  it.each(['SIGHUP', 'SIGTERM'] as const)('stops cleanly (exit 0) on %s, as when its terminal closes', async (signal) => {
    const child = spawn(process.execPath, [SOH, 'node', 'om'], { env: { ...process.env, SOH_DATA_DIR: mkdtempSync(join(home, 'signal-')), SOH_NODE_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => chunk.includes('listening on') && resolve());
      child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
    });
    const exited = new Promise<[number | null, string | null]>((resolve) => child.once('exit', (code, killedBy) => resolve([code, killedBy])));
    child.kill(signal);
    expect(await exited).toEqual([0, null]);
  });
});

describe('the processes soh up and the benchmark start', () => {
  it('run with NODE_ENV=production unless the caller chose a NODE_ENV', () => {
    expect(serviceEnv({ SOH_DATA_DIR: home }).NODE_ENV).toBe('production');
    expect(serviceEnv({ SOH_DATA_DIR: home, NODE_ENV: 'test' }).NODE_ENV).toBe('test');
    expect(serviceEnv({ SOH_DATA_DIR: home }).SOH_DATA_DIR).toBe(home);
  });
});
