import { readFile } from 'node:fs/promises';

/**
 * Reads a JSON file (a config, model card, warp map...) before its schema check. Errors name the
 * caller and the file: `loadWarpMap: cannot read warp.json: ENOENT...` or
 * `loadWarpMap: warp.json is not valid JSON: Unexpected token...`.
 */
export async function readJsonFile(path: string, caller: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`${caller}: cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new SyntaxError(`${caller}: ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}
