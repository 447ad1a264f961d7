import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config.ts';

/** The issuer of the tokens the gateway mints for nodes (DESIGN §4), and the actor they name. */
export const GATEWAY_ISSUER = 'soh-gateway';

/** An Ed25519 key kept as a private JWK file, created on first use (mode 0600). */
export interface StoredKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: Record<string, unknown>;
  createdAt: number;
}

function fromJwk(jwk: Record<string, unknown>): StoredKey {
  const privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' });
  const publicKey = createPublicKey(privateKey);
  const kid = String(jwk['kid']);
  return {
    kid,
    privateKey,
    publicKey,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA', use: 'sig' },
    createdAt: Number(jwk['created_at'] ?? 0),
  };
}

export function createKeyFile(dir: string, prefix: string, now = Date.now()): StoredKey {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const kid = `${prefix}-${new Date(now).toISOString().slice(0, 10)}-${randomBytes(4).toString('hex')}`;
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, created_at: now };
  writeFileSync(join(dir, `${kid}.private.jwk.json`), `${JSON.stringify(jwk)}\n`, { mode: 0o600, flag: 'wx' });
  return fromJwk(jwk);
}

/** Every key in `dir`, newest first (none if there is none). */
export function loadKeys(dir: string): StoredKey[] {
  const files = existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.private.jwk.json')) : [];
  const byKid = new Map<string, string>();
  const keys = files.map((name) => {
    const key = fromJwk(JSON.parse(readFileSync(join(dir, name), 'utf8')));
    // Published twice, one kid matches two keys, and every verifier refuses every token of it.
    const other = byKid.get(key.kid);
    if (other) throw new ConfigError(`the key files ${other} and ${name} in ${dir} hold the same kid ${key.kid}: keep one`);
    byKid.set(key.kid, name);
    return key;
  });
  return keys.sort((a, b) => b.createdAt - a.createdAt || a.kid.localeCompare(b.kid));
}

/** Every key in `dir`, newest first; creates one when there is none. */
export function loadOrCreateKeys(dir: string, prefix: string): StoredKey[] {
  const keys = loadKeys(dir);
  return keys.length > 0 ? keys : [createKeyFile(dir, prefix)];
}

/** A random secret kept in a file (mode 0600), created on first use. */
export function loadOrCreateSecret(file: string, bytes = 32): Buffer {
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  const secret = randomBytes(bytes);
  writeFileSync(file, `${secret.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

/**
 * Reads a JWKS document distributed out of band. A missing or malformed file stops start-up with
 * the setting that names it, instead of a stack trace.
 */
export function readJwksFile(file: string, setting: string): { keys: Record<string, unknown>[] } {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'the file does not exist' : 'the file is not readable JSON';
    throw new ConfigError(`${setting}: cannot read the JWKS file ${file}: ${reason}`);
  }
  const keys = (document as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new ConfigError(`${setting}: ${file} is not a JWKS document (a non-empty "keys" array)`);
  return { keys };
}
