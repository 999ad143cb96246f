/**
 * Benchmarks: `npm run bench -- NAME [--json]`. Each prints its figures; with --json the last
 * stdout line is one JSON object. Speed targets live here, never in timed tests.
 */
import { calibrateBenchmark } from './calibrate.js';
import { detectBenchmark } from './detect.js';
import { e2eBenchmark } from './e2e.js';
import { ispBenchmark } from './isp.js';
import { linkBenchmark } from './link.js';
import { renderBenchmark } from './render.js';
import { replayBenchmark } from './replay.js';
import { worldBenchmark } from './world.js';

const BENCHMARKS: Record<string, (json: boolean) => Promise<Record<string, unknown>>> = {
  calibrate: calibrateBenchmark,
  detect: detectBenchmark,
  e2e: e2eBenchmark,
  isp: ispBenchmark,
  link: linkBenchmark,
  render: renderBenchmark,
  replay: replayBenchmark,
  world: worldBenchmark,
};

const args = process.argv.slice(2);
const json = args.includes('--json');
const names = args.filter((a) => !a.startsWith('--'));
if (names.length === 0 || names.some((n) => !(n in BENCHMARKS))) {
  process.stderr.write(`usage: npm run bench -- NAME [--json]; NAME one of: ${Object.keys(BENCHMARKS).join(', ')}\n`);
  process.exit(2);
}
for (const name of names) {
  const result = await BENCHMARKS[name]!(json);
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
}
