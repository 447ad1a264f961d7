import { randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { SignJWT } from 'jose';
import { GatewayKeys } from '../gateway/auth/gateway-keys.ts';
import { NODE_IDS } from '../lib/partners.ts';

/**
 * The node token the baselines send. Nodes accept only gateway-minted tokens that live at most
 * 60 s, so the benchmark re-mints one (valid for all four nodes, purpose vt-hit-check) every 20 s
 * into a file the baseline processes re-read.
 */
const LIFETIME_SECONDS = 60;
const REFRESH_MS = 20_000;
const REREAD_MS = 5_000;

export async function mintBenchNodeToken(dataDir: string): Promise<string> {
  const key = new GatewayKeys(dataDir).signing;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ org: 'veilig-thuis-bench', roles: ['vt-medewerker'], purpose: 'vt-hit-check', case_ref: 'BENCH-1', act: { sub: 'soh-gateway' } })
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })
    .setIssuer('soh-gateway')
    .setAudience([...NODE_IDS])
    .setSubject('bench')
    .setIssuedAt(now)
    .setExpirationTime(now + LIFETIME_SECONDS)
    .setJti(randomUUID())
    .sign(key.privateKey);
}

/** Keeps `file` holding a valid node token until the returned stop function is called. */
export async function keepNodeTokenFresh(dataDir: string, file: string): Promise<() => void> {
  const write = async () => {
    writeFileSync(`${file}.tmp`, await mintBenchNodeToken(dataDir));
    renameSync(`${file}.tmp`, file);
  };
  await write();
  const timer = setInterval(() => void write(), REFRESH_MS);
  return () => clearInterval(timer);
}

/** The current token from the file, re-read every few seconds. */
export function nodeTokenReader(file: string): () => string {
  let token = readFileSync(file, 'utf8');
  let readAt = Date.now();
  return () => {
    if (Date.now() - readAt > REREAD_MS) {
      token = readFileSync(file, 'utf8');
      readAt = Date.now();
    }
    return token;
  };
}
