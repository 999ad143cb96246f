/** Paths to the real shared data and temp-dir helpers for tests. */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importPandaset } from '../../pipeline/sources/pandaset.js';

export const PROJECT_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
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
