/**
 * The Debian binaries the system suite (`npm run test:system`) needs. Nothing here skips: a missing
 * binary fails every test of the file with a message naming it and its apt package (`.ci/run`
 * installs them before running this suite).
 */
import { existsSync } from 'node:fs';
import { beforeAll } from 'vitest';
import { MOSQUITTO, MOSQUITTO_PASSWD } from '../hud/support.js';

export interface SystemBinary {
  path: string;
  aptPackage: string;
}

export const CHROMIUM = process.env.ARHUD_CHROMIUM ?? '/usr/bin/chromium';
export const OPENSSL = process.env.ARHUD_OPENSSL ?? '/usr/bin/openssl';

export const MOSQUITTO_BINARIES: SystemBinary[] = [
  { path: MOSQUITTO, aptPackage: 'mosquitto' },
  { path: MOSQUITTO_PASSWD, aptPackage: 'mosquitto' },
];
export const CHROMIUM_BINARY: SystemBinary = { path: CHROMIUM, aptPackage: 'chromium' };
export const OPENSSL_BINARY: SystemBinary = { path: OPENSSL, aptPackage: 'openssl' };

/** The message a test fails with when `binaries` are not all present, or undefined when they are. */
export function missingBinaries(binaries: readonly SystemBinary[]): string | undefined {
  const missing = binaries.filter((b) => !existsSync(b.path));
  if (missing.length === 0) return undefined;
  const packages = [...new Set(missing.map((b) => b.aptPackage))].join(' ');
  return `${missing.map((b) => `${b.path} not found`).join(', ')}: apt-get install ${packages} (.ci/run does)`;
}

/** Registers a beforeAll in the calling scope that fails its tests when a binary is missing. */
export function requireBinaries(...binaries: readonly SystemBinary[]): void {
  beforeAll(() => {
    const message = missingBinaries(binaries);
    if (message) throw new Error(`system suite: ${message}`);
  });
}
