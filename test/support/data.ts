/** Paths to the real shared data and temp-dir helpers for tests. */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importPandaset } from '../../pipeline/sources/pandaset.js';

/** The folder holding package.json (tests run from test/support, benchmarks from dist/test/support). */
export const PROJECT_ROOT = findProjectRoot(path.dirname(fileURLToPath(import.meta.url)));

function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'node_modules'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`test/support: no package.json above ${from}`);
  }
}
export const DATA_DIR = process.env.ARHUD_DATA ?? path.resolve(PROJECT_ROOT, '../shared/data');
export const PANDASET_DIR = path.join(DATA_DIR, 'pandaset-002');

export function tempDir(prefix = 'arhud-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

let drive: Promise<string> | undefined;

/** The PandaSet sample imported once per test worker; the file must not be modified. */
export function importedPandasetDrive(): Promise<string> {
  drive ??= tempDir().then(async (dir) => {
    const file = path.join(dir, 'pandaset-002.mcap');
    await importPandaset(PANDASET_DIR, file);
    return file;
  });
  return drive;
}
