/**
 * The original tfjs runtime, for parity tests and the peer benchmark: the wasm backend (what a Node
 * user without native tfjs would pick; the pure-JS cpu backend only as a fallback) and a graph-model
 * loader that reads model.json and its shards from disk.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tfconverter from '@tensorflow/tfjs-converter';
import { PROJECT_ROOT } from './data.js';

export { tf };

/** Selects the wasm backend (cpu when wasm cannot start); returns the backend in use. */
export async function useTfjsWasm(): Promise<string> {
  setWasmPaths(`${path.join(PROJECT_ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist')}${path.sep}`);
  if (!(await tf.setBackend('wasm').catch(() => false))) await tf.setBackend('cpu');
  await tf.ready();
  return tf.getBackend();
}

/** Loads a graph model through an IOHandler built from the files on disk (all groups and shards, in order). */
export async function loadTfjsGraphModel(modelJson: string): Promise<tfconverter.GraphModel> {
  const json = JSON.parse(await readFile(modelJson, 'utf8')) as tf.io.ModelJSON;
  const manifest = json.weightsManifest;
  const shards = await Promise.all(manifest.flatMap((group) => group.paths.map((p) => readFile(path.join(path.dirname(modelJson), p)))));
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  return tfconverter.loadGraphModel({
    load: async () => ({
      modelTopology: json.modelTopology,
      weightSpecs: manifest.flatMap((group) => group.weights),
      weightData,
      format: json.format,
      generatedBy: json.generatedBy,
      convertedBy: json.convertedBy,
      signature: json.signature,
    }),
  });
}
