/**
 * `arhud isp ...`: the ISP's learned denoiser — `isp train` trains it from the real frames (what
 * `npm run train:denoise` runs) and writes the model and its card beside
 * perception/isp/denoiser/denoiser.ts, where they are committed.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_DENOISER_TRAINING, trainDenoiser, type DenoiserTrainingConfig } from '../perception/isp/denoiser/train.js';

function positiveInteger(flag: string): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError(`${flag} takes a positive integer, got '${text}'`);
    return value;
  };
}

export function addIspCommands(program: Command, defaultDataDir: string): void {
  const isp = program.command('isp').description('the ISP stage: learned denoiser training');
  isp
    .command('train')
    .description('train the learned denoiser (PyTorch via python3) on the training frames; evaluate on held-out frames; write model + card')
    .option('--data <dir>', 'shared data directory', defaultDataDir)
    .option('--output <dir>', 'where denoise.onnx and denoise.json go (default: the committed model in perception/isp/denoiser)')
    .option('--steps <n>', `optimizer steps (default ${DEFAULT_DENOISER_TRAINING.steps})`, positiveInteger('--steps'))
    .option('--seed <n>', `seed (default ${DEFAULT_DENOISER_TRAINING.seed})`, positiveInteger('--seed'))
    .option('--python <exe>', 'python with torch (default: python3 on PATH, else /usr/bin/python3)')
    .action(async (opts: { data: string; output?: string; steps?: number; seed?: number; python?: string }) => {
      const config: Partial<DenoiserTrainingConfig> = {};
      if (opts.steps !== undefined) config.steps = opts.steps;
      if (opts.seed !== undefined) config.seed = opts.seed;
      const card = await trainDenoiser({
        dataDir: opts.data,
        ...(opts.output !== undefined ? { outputDir: opts.output } : {}),
        ...(opts.python !== undefined ? { python: opts.python } : {}),
        config,
        onMessage: (m) => process.stdout.write(`${m}\n`),
        onProgress: (l) =>
          process.stdout.write(`step ${String(l.step).padStart(5)}  loss ${l.loss.toExponential(3)}  ${l.elapsedS.toFixed(0).padStart(5)} s${l.valPsnr !== undefined ? `  val PSNR ${l.valPsnr.toFixed(2)} dB (noisy ${l.valPsnrNoisy!.toFixed(2)})` : ''}\n`),
      });
      process.stdout.write(`held-out frames (${JSON.stringify(card.metrics)})\n`);
      process.stdout.write(`${JSON.stringify({ parameters: card.architecture.parameters, ...card.metrics })}\n`);
    });
}
