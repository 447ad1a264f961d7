import { join } from 'node:path';
import { type StoredKey, loadOrCreateKeys } from '../../lib/keys.ts';

/**
 * The gateway's signing keys under <data>/gateway/keys. The newest key signs downstream tokens;
 * every key stays in the published JWKS so that tokens signed before a rotation keep verifying.
 */
export class GatewayKeys {
  readonly signing: StoredKey;
  readonly all: StoredKey[];

  constructor(dataDir: string) {
    this.all = loadOrCreateKeys(join(dataDir, 'gateway', 'keys'), 'gateway');
    this.signing = this.all[0]!;
  }

  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: this.all.map((key) => key.publicJwk) };
  }
}
