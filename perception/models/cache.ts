/**
 * Model cache: built models live in `<cacheDir>/<name>-<hash>/`, where the hash covers everything
 * the build depends on (source bytes, recipe version, options). An entry is built in a temporary
 * directory beside it and renamed into place only when complete, so a failed or interrupted build
 * never leaves a half-written entry; `entry.json` inside says how it was built.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Manifest written last into every complete entry. */
export const ENTRY_MANIFEST = 'entry.json';
/** Hex digits of the content hash used in entry directory names. */
const HASH_DIGITS = 16;

export interface CacheEntryManifest {
  name: string;
  hash: string;
  /** ISO time the build finished (informational; not part of the hash). */
  builtAt: string;
  buildMs: number;
  /** Files in the entry, relative to it, with their sizes. */
  files: Record<string, number>;
  /** Whatever the recipe wants to record: sources, options, calibration set, accuracy... */
  recipe: Record<string, unknown>;
}

export interface CacheEntry {
  dir: string;
  manifest: CacheEntryManifest;
}

export function defaultCacheDir(): string {
  if (process.env.ARHUD_CACHE) return path.join(process.env.ARHUD_CACHE, 'models');
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'arhud', 'models');
}

/** Content hash of a build: feed it every input (file bytes, options JSON, recipe version). */
export class BuildHash {
  readonly #hash = createHash('sha256');

  add(label: string, content: string | Uint8Array): this {
    this.#hash.update(`${label}\u0000${content.length}\u0000`);
    this.#hash.update(content);
    return this;
  }

  digest(): string {
    return this.#hash.digest('hex').slice(0, HASH_DIGITS);
  }
}

export class ModelCache {
  readonly dir: string;

  constructor(dir: string = defaultCacheDir()) {
    this.dir = dir;
  }

  entryDir(name: string, hash: string): string {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name)) throw new RangeError(`ModelCache: entry name must be [a-z0-9._-]+, got '${name}'`);
    return path.join(this.dir, `${name}-${hash}`);
  }

  /** The complete entry, or undefined when it was never built (or is damaged: then it is removed). */
  async get(name: string, hash: string): Promise<CacheEntry | undefined> {
    const dir = this.entryDir(name, hash);
    let manifest: CacheEntryManifest;
    try {
      manifest = JSON.parse(await readFile(path.join(dir, ENTRY_MANIFEST), 'utf8')) as CacheEntryManifest;
    } catch {
      return undefined;
    }
    for (const [file, size] of Object.entries(manifest.files)) {
      const actual = await stat(path.join(dir, file)).then((s) => s.size, () => -1);
      if (actual !== size) {
        // Damaged after it was built (disk full, manual edits): drop it so it gets rebuilt.
        await rm(dir, { recursive: true, force: true });
        return undefined;
      }
    }
    return { dir, manifest };
  }

  /**
   * Returns the entry, building it first when missing. `build` writes its files into the temporary
   * directory it is given and returns the recipe record for the manifest.
   */
  async getOrBuild(name: string, hash: string, build: (workDir: string) => Promise<Record<string, unknown>>): Promise<CacheEntry & { built: boolean }> {
    const existing = await this.get(name, hash);
    if (existing) return { ...existing, built: false };
    await mkdir(this.dir, { recursive: true });
    const workDir = path.join(this.dir, `.build-${name}-${hash}-${randomBytes(4).toString('hex')}`);
    await mkdir(workDir);
    const startedMs = Date.now();
    try {
      const recipe = await build(workDir);
      const files: Record<string, number> = {};
      for (const file of (await readdir(workDir)).sort()) files[file] = (await stat(path.join(workDir, file))).size;
      const manifest: CacheEntryManifest = { name, hash, builtAt: new Date().toISOString(), buildMs: Date.now() - startedMs, files, recipe };
      await writeFile(path.join(workDir, ENTRY_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
      const dir = this.entryDir(name, hash);
      try {
        await rename(workDir, dir);
      } catch (error) {
        // Someone else finished the same build first: theirs is as good as ours.
        const theirs = await this.get(name, hash);
        if (!theirs) throw error;
        await rm(workDir, { recursive: true, force: true });
        return { ...theirs, built: false };
      }
      return { dir, manifest, built: true };
    } catch (error) {
      await rm(workDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** Complete entries, newest first. */
  async list(): Promise<CacheEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const entries: CacheEntry[] = [];
    for (const dirName of names) {
      if (dirName.startsWith('.')) continue;
      try {
        const manifest = JSON.parse(await readFile(path.join(this.dir, dirName, ENTRY_MANIFEST), 'utf8')) as CacheEntryManifest;
        entries.push({ dir: path.join(this.dir, dirName), manifest });
      } catch {
        // Not a cache entry (or not complete): ignore.
      }
    }
    return entries.sort((a, b) => b.manifest.builtAt.localeCompare(a.manifest.builtAt));
  }
}
