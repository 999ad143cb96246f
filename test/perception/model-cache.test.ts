import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildHash, ENTRY_MANIFEST, ModelCache } from '../../perception/models/cache.js';
import { tempDir } from '../support/data.js';

describe('ModelCache', () => {
  it('builds once, then serves the entry; the hash changes with any input', async () => {
    const cache = new ModelCache(path.join(await tempDir(), 'models'));
    const hash = new BuildHash().add('model.json', '{"a":1}').add('options', 'int8').digest();
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    expect(new BuildHash().add('model.json', '{"a":2}').add('options', 'int8').digest()).not.toBe(hash);
    expect(new BuildHash().add('model.json', '{"a":1}').add('options', 'fp32').digest()).not.toBe(hash);
    let builds = 0;
    const build = async (dir: string) => {
      builds++;
      await writeFile(path.join(dir, 'model.onnx'), 'weights');
      return { source: 'test' };
    };
    const first = await cache.getOrBuild('demo', hash, build);
    const second = await cache.getOrBuild('demo', hash, build);
    expect([first.built, second.built, builds]).toEqual([true, false, 1]);
    expect(second.manifest.files).toEqual({ 'model.onnx': 7 });
    expect(second.manifest.recipe).toEqual({ source: 'test' });
    expect((await cache.list()).map((e) => e.manifest.hash)).toEqual([hash]);
  });

  it('leaves nothing behind when a build fails', async () => {
    const cache = new ModelCache(path.join(await tempDir(), 'models'));
    await expect(
      cache.getOrBuild('broken', 'abc', async (dir) => {
        await writeFile(path.join(dir, 'half.onnx'), 'half');
        throw new Error('converter: unsupported op Elu');
      }),
    ).rejects.toThrow('unsupported op Elu');
    expect(await readdir(cache.dir)).toEqual([]);
    expect(await cache.get('broken', 'abc')).toBeUndefined();
  });

  it('drops a damaged entry so it is rebuilt', async () => {
    const cache = new ModelCache(path.join(await tempDir(), 'models'));
    const entry = await cache.getOrBuild('demo', 'f00', async (dir) => {
      await writeFile(path.join(dir, 'model.onnx'), 'weights');
      return {};
    });
    await writeFile(path.join(entry.dir, 'model.onnx'), 'we');
    expect(await cache.get('demo', 'f00')).toBeUndefined();
    const rebuilt = await cache.getOrBuild('demo', 'f00', async (dir) => {
      await writeFile(path.join(dir, 'model.onnx'), 'weights');
      return {};
    });
    expect(rebuilt.built).toBe(true);
    expect(JSON.parse(await readFile(path.join(rebuilt.dir, ENTRY_MANIFEST), 'utf8')).files).toEqual({ 'model.onnx': 7 });
  });

  it('refuses entry names that would escape the cache', () => {
    expect(() => new ModelCache('/tmp/x').entryDir('../etc', 'a')).toThrow(RangeError);
  });
});
