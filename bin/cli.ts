/**
 * `arhud` command line: parses arguments, wires modules, prints progress and summaries. Every
 * error is one line on stderr; exit codes: 0 ok, 1 failed, 2 bad usage, 130 interrupted (the
 * output recording is still finalized).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { mkdir } from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatLatencyTable } from '../pipeline/metrics.js';
import { firstLine, type RecordingError } from '../pipeline/recording/errors.js';
import { RecordingReader } from '../pipeline/recording/reader.js';
import { runReplay, type ReplaySummary } from '../pipeline/replay.js';
import { importPandaset } from '../pipeline/sources/pandaset.js';
import { MAX_REPLAY_SPEED, MIN_REPLAY_SPEED } from '../pipeline/sources/replay.js';
import { importVideo } from '../pipeline/sources/video.js';
import { isoFromNs } from '../pipeline/time.js';
import { createProgress } from './progress.js';

const PROJECT_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
/** Real data lives beside the project (see ../shared/data/README.md); ARHUD_DATA overrides. */
const DEFAULT_DATA_DIR = process.env.ARHUD_DATA ?? path.resolve(PROJECT_ROOT, '../shared/data');
/** Problems printed one by one before the rest are only counted. */
const MAX_PROBLEM_LINES = 20;
const EXIT_INTERRUPTED = 130;

class Interrupt {
  readonly controller = new AbortController();
  #signals = 0;
  readonly #onSignal = () => {
    this.#signals++;
    if (this.#signals > 1) process.exit(EXIT_INTERRUPTED);
    process.stderr.write('\narhud: interrupted; finishing the output recording (Ctrl-C again to quit at once)\n');
    this.controller.abort(new Error('interrupted'));
  };

  constructor() {
    process.on('SIGINT', this.#onSignal);
    process.on('SIGTERM', this.#onSignal);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
  }
}

function problemPrinter(command: string): (problem: RecordingError) => void {
  let count = 0;
  return (problem) => {
    count++;
    if (count <= MAX_PROBLEM_LINES) process.stderr.write(`arhud ${command}: warning: ${problem.message}\n`);
    else if (count === MAX_PROBLEM_LINES + 1) process.stderr.write(`arhud ${command}: warning: more problems follow; counted in the summary\n`);
  };
}

function parseNumber(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || value > max) throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max}], got '${text}'`);
    return value;
  };
}

function parseLoops(text: string | true): number {
  if (text === true) return Infinity;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`--loop takes a whole number of passes >= 1, got '${text}'`);
  return value;
}

function defaultReplayOutput(input: string): string {
  return input.replace(/(\.mcap)?$/i, '.replay.mcap');
}

function printReplaySummary(summary: ReplaySummary, json: boolean): void {
  const lines = [
    `replayed ${summary.frames} frames (${summary.loopsCompleted} loop(s), ${summary.pacing}) from ${summary.input}`,
    `wrote ${summary.messagesWritten} messages to ${summary.output}`,
    `${summary.fps.toFixed(1)} fps, ${summary.xRealtime.toFixed(1)}x real time (${summary.recordedS.toFixed(2)} s recorded in ${summary.wallS.toFixed(2)} s)`,
    `skipped ${summary.messagesSkipped} message(s), dropped ${summary.framesDropped} frame(s), ${summary.problems} problem(s)`,
    `frame buffers: ${summary.pool.allocations} allocated, ${summary.pool.reuses} reused, ${summary.poolAllocsSteadyState} allocated after warm-up`,
    summary.loopsCompleted > 2
      ? `RSS ${summary.rssEndMB.toFixed(1)} MB (trend over ${summary.loopsCompleted} loops ${summary.rssGrowthMB.toFixed(1)} MB; JS heap ${summary.heapGrowthMB.toFixed(1)} MB)`
      : `RSS ${summary.rssEndMB.toFixed(1)} MB`,
    '',
    formatLatencyTable(summary.stages),
  ];
  if (summary.interrupted) lines.unshift('interrupted: the output holds everything replayed so far');
  process.stdout.write(`${lines.join('\n')}\n`);
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
}

interface ReplayCliOptions {
  output?: string;
  speed: number;
  afap?: boolean;
  start?: number;
  end?: number;
  loop?: number;
  topics?: string[];
  strict?: boolean;
  json?: boolean;
  quiet?: boolean;
}

async function replayCommand(input: string, opts: ReplayCliOptions): Promise<number> {
  const interrupt = new Interrupt();
  const progress = createProgress('replay', { quiet: opts.quiet });
  try {
    const output = opts.output ?? defaultReplayOutput(input);
    const summary = await runReplay({
      input,
      output,
      pacing: opts.afap ? 'afap' : { speed: opts.speed },
      topics: opts.topics,
      startS: opts.start,
      endS: opts.end,
      loops: opts.loop ?? 1,
      strict: opts.strict,
      signal: interrupt.signal,
      onProblem: problemPrinter('replay'),
      onProgress: (done, total) => progress.update(done, total),
    });
    progress.stop();
    await writeFile(`${output}.summary.json`, `${JSON.stringify(summary, null, 2)}\n`);
    printReplaySummary(summary, opts.json ?? false);
    return summary.interrupted ? EXIT_INTERRUPTED : 0;
  } finally {
    progress.stop();
    interrupt.dispose();
  }
}

async function infoCommand(file: string): Promise<number> {
  const problems = problemPrinter('info');
  const reader = await RecordingReader.open(file, { onProblem: problems });
  try {
    const durationS = Number(reader.endNs - reader.startNs) / 1e9;
    const lines = [
      `${file}: ${reader.messageCount} messages, ${durationS.toFixed(3)} s${reader.indexed ? '' : ' (recovered without index)'}`,
      reader.messageCount > 0 ? `  from ${isoFromNs(reader.startNs)} to ${isoFromNs(reader.endNs)}` : '  (empty)',
      ...reader.topics.map((t) => `  ${t.topic.padEnd(28)} ${String(t.messageCount).padStart(6)}  ${t.schemaName}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await reader.close();
  }
}

export function createProgram(): Command {
  const program = new Command('arhud')
    .description('Automotive AR head-up display pipeline: import and replay recorded drives (MCAP).')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const importCmd = program.command('import').description('import a dataset or video into an MCAP recording');
  importCmd
    .command('pandaset')
    .description('import a PandaSet sequence (front camera, intrinsics, poses, vehicle state, 3D cuboids)')
    .argument('<dir>', 'sequence directory, e.g. ../shared/data/pandaset-002')
    .requiredOption('-o, --output <file>', 'output recording (.mcap)')
    .option('-q, --quiet', 'no progress bar')
    .action(async (dir: string, opts: { output: string; quiet?: boolean }) => {
      const interrupt = new Interrupt();
      const progress = createProgress('import', { quiet: opts.quiet });
      try {
        const result = await importPandaset(dir, opts.output, { signal: interrupt.signal, onProgress: (d, t) => progress.update(d, t) });
        progress.stop();
        process.stdout.write(
          `imported ${result.frames} frames (${isoFromNs(result.firstNs)} .. ${isoFromNs(result.lastNs)}), ${result.groundTruthObjects} labelled boxes -> ${result.outputPath}${result.aborted ? ' (interrupted)' : ''}\n`,
        );
        process.exitCode = result.aborted ? EXIT_INTERRUPTED : 0;
      } finally {
        progress.stop();
        interrupt.dispose();
      }
    });
  importCmd
    .command('video')
    .description('import a video file (decoded by ffmpeg; timestamps from the stream pts)')
    .argument('<file>', 'video file, e.g. ../shared/data/udacity-lanelines/test_videos/solidWhiteRight.mp4')
    .requiredOption('-o, --output <file>', 'output recording (.mcap)')
    .addOption(new Option('--quality <q>', 'JPEG quality of the stored frames').default(90).argParser(parseNumber('--quality', 1, 100)))
    .option('-q, --quiet', 'no progress bar')
    .action(async (file: string, opts: { output: string; quality: number; quiet?: boolean }) => {
      const interrupt = new Interrupt();
      const progress = createProgress('import', { quiet: opts.quiet });
      try {
        const result = await importVideo(file, opts.output, {
          jpegQuality: opts.quality,
          signal: interrupt.signal,
          onProgress: (d, t) => progress.update(d, t),
        });
        progress.stop();
        process.stdout.write(
          `imported ${result.frames} frames ${result.width}x${result.height} (${isoFromNs(result.firstNs)} .. ${isoFromNs(result.lastNs)}) -> ${result.outputPath}${result.aborted ? ' (interrupted)' : ''}\n`,
        );
        process.exitCode = result.aborted ? EXIT_INTERRUPTED : 0;
      } finally {
        progress.stop();
        interrupt.dispose();
      }
    });

  program
    .command('info')
    .description('list the topics, message counts and time span of a recording')
    .argument('<file>', 'recording (.mcap)')
    .action(async (file: string) => {
      process.exitCode = await infoCommand(file);
    });

  program
    .command('replay')
    .description('replay a recording through the pipeline into a new recording, paced by log time or as fast as possible')
    .argument('<file>', 'recording (.mcap)')
    .option('-o, --output <file>', 'output recording (default: <file>.replay.mcap); a summary goes to <output>.summary.json')
    .addOption(new Option('--speed <x>', `pace factor vs recorded time (${MIN_REPLAY_SPEED}..${MAX_REPLAY_SPEED})`).default(1).argParser(parseNumber('--speed', MIN_REPLAY_SPEED, MAX_REPLAY_SPEED)))
    .addOption(new Option('--afap', 'as fast as possible (deterministic output)').conflicts('speed'))
    .addOption(new Option('--start <s>', 'start this many seconds after the first message').argParser(parseNumber('--start', 0, Number.MAX_SAFE_INTEGER)))
    .addOption(new Option('--end <s>', 'stop this many seconds after the first message').argParser(parseNumber('--end', 0, Number.MAX_SAFE_INTEGER)))
    .addOption(new Option('--loop [n]', 'play n times (forever without n, until Ctrl-C)').argParser(parseLoops))
    .addOption(new Option('--topics <list>', 'comma-separated topics to play').argParser((text) => text.split(',').map((t) => t.trim()).filter(Boolean)))
    .option('--strict', 'stop at the first corrupt or out-of-order message instead of skipping it')
    .option('--json', 'print the summary as one JSON line last')
    .option('-q, --quiet', 'no progress bar')
    .action(async (file: string, opts: ReplayCliOptions) => {
      process.exitCode = await replayCommand(file, opts);
    });

  program
    .command('demo')
    .description('import the PandaSet sample and replay it through the pipeline (the quick-start job)')
    .option('--data <dir>', 'shared data directory', DEFAULT_DATA_DIR)
    .option('--out <dir>', 'where recordings and summaries go', path.join(PROJECT_ROOT, 'out'))
    .option('--json', 'print the replay summary as one JSON line last')
    .action(async (opts: { data: string; out: string; json?: boolean }) => {
      await mkdir(opts.out, { recursive: true });
      const drive = path.join(opts.out, 'pandaset-002.mcap');
      process.stdout.write(`arhud demo: importing ${path.join(opts.data, 'pandaset-002')} (PandaSet, Hesai & Scale AI, CC BY 4.0)\n`);
      const progress = createProgress('import');
      const imported = await importPandaset(path.join(opts.data, 'pandaset-002'), drive, { onProgress: (d, t) => progress.update(d, t) });
      progress.stop();
      process.stdout.write(`imported ${imported.frames} frames, ${imported.groundTruthObjects} labelled boxes -> ${drive}\n\n`);
      process.exitCode = await replayCommand(drive, { output: path.join(opts.out, 'pandaset-002.replay.mcap'), speed: 1, afap: true, json: opts.json });
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = 0;
      return;
    }
    if (code?.startsWith('commander.')) {
      process.exitCode = 2;
      return;
    }
    const command = argv.slice(2).find((arg) => !arg.startsWith('-')) ?? 'arhud';
    process.stderr.write(`arhud ${command}: ${firstLine(error)}\n`);
    process.exitCode = 1;
  }
}

