/**
 * Replay benchmark: the imported PandaSet drive (60 frames, 1920x1080 JPEG, 10 Hz) replayed --afap
 * with JPEG decode, 10 loops per run, through the real CLI in a fresh process. Reports medians over
 * RUNS runs. Targets (issue #2): >= 10x real time, RSS growth < 20 MB over 10 loops, no new frame
 * buffers in steady state.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { DATA_DIR, PROJECT_ROOT } from '../support/data.js';

const run = promisify(execFile);
const ROOT = PROJECT_ROOT;
const DATA = DATA_DIR;
const CLI = path.join(ROOT, 'bin/arhud');
export const RUNS = 3;
export const LOOPS = 10;
export const TARGET_X_REALTIME = 10;
export const TARGET_RSS_GROWTH_MB = 20;

interface ReplaySummaryJson {
  fps: number;
  xRealtime: number;
  rssGrowthMB: number;
  rssEndMinusWarmMB: number;
  rssByLoopMB: number[];
  heapGrowthMB: number;
  externalGrowthMB: number;
  poolAllocsSteadyState: number;
  frames: number;
  stages: Record<string, { p50Ms: number; p99Ms: number }>;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function replayBenchmark(): Promise<Record<string, unknown>> {
  const outDir = path.join(ROOT, 'out', 'bench');
  await mkdir(outDir, { recursive: true });
  const drive = path.join(outDir, 'pandaset-002.mcap');
  if (!existsSync(drive)) {
    await run(process.execPath, [CLI, 'import', 'pandaset', path.join(DATA, 'pandaset-002'), '-o', drive, '-q']);
  }
  const runs: ReplaySummaryJson[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { stdout } = await run(process.execPath, ['--expose-gc', CLI, 'replay', drive, '--afap', '--detect', 'none', '--loop', String(LOOPS), '--json', '-q', '-o', path.join(outDir, 'replay.mcap')], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as ReplaySummaryJson;
    runs.push(summary);
    process.stdout.write(
      `run ${i + 1}/${RUNS}: ${summary.frames} frames, ${summary.fps.toFixed(1)} fps, ${summary.xRealtime.toFixed(1)}x real time, RSS growth ${summary.rssGrowthMB.toFixed(1)} MB (trend; end minus warm ${summary.rssEndMinusWarmMB.toFixed(1)} MB; JS heap ${summary.heapGrowthMB.toFixed(1)} MB, external ${summary.externalGrowthMB.toFixed(1)} MB), new buffers after warm-up ${summary.poolAllocsSteadyState}\n`,
    );
  }
  const stageNames = Object.keys(runs[0]!.stages);
  const result = {
    benchmark: 'replay',
    data: 'pandaset-002 (60 frames, 1920x1080 JPEG, 10 Hz), --afap, JPEG decode',
    runs: RUNS,
    loops: LOOPS,
    fps: median(runs.map((r) => r.fps)),
    xRealtime: median(runs.map((r) => r.xRealtime)),
    rssGrowthMB: median(runs.map((r) => r.rssGrowthMB)),
    rssEndMinusWarmMB: median(runs.map((r) => r.rssEndMinusWarmMB)),
    rssByLoopMB: runs.map((r) => r.rssByLoopMB.map((v) => Math.round(v))),
    heapGrowthMB: median(runs.map((r) => r.heapGrowthMB)),
    externalGrowthMB: median(runs.map((r) => r.externalGrowthMB)),
    poolAllocsSteadyState: Math.max(...runs.map((r) => r.poolAllocsSteadyState)),
    stageP50Ms: Object.fromEntries(stageNames.map((s) => [s, median(runs.map((r) => r.stages[s]!.p50Ms))])),
    stageP99Ms: Object.fromEntries(stageNames.map((s) => [s, median(runs.map((r) => r.stages[s]!.p99Ms))])),
    targets: {
      xRealtime: `>= ${TARGET_X_REALTIME}`,
      rssGrowthMB: `< ${TARGET_RSS_GROWTH_MB}`,
      poolAllocsSteadyState: '0',
    },
    met: false,
  };
  result.met = result.xRealtime >= TARGET_X_REALTIME && result.rssGrowthMB < TARGET_RSS_GROWTH_MB && result.poolAllocsSteadyState === 0;
  process.stdout.write(
    `replay (median of ${RUNS}): ${result.fps.toFixed(1)} fps, ${result.xRealtime.toFixed(1)}x real time, RSS growth ${result.rssGrowthMB.toFixed(1)} MB over ${LOOPS} loops, ${result.poolAllocsSteadyState} new frame buffers in steady state -> targets ${result.met ? 'met' : 'NOT met'}\n`,
  );
  return result;
}
