import { SingleBar, Presets } from 'cli-progress';

/** Quiet for this long; anything quicker never shows a bar. */
export const PROGRESS_DELAY_MS = 1000;
/** Without a terminal (CI logs), a plain line at most this often. */
export const PROGRESS_LINE_INTERVAL_MS = 2000;

export interface Progress {
  update(done: number, total: number | undefined): void;
  stop(): void;
}

/**
 * A progress bar on stderr for work that takes over a second: a live bar on a terminal, a line
 * every few seconds otherwise, nothing at all for quick jobs or with `quiet`.
 */
export function createProgress(label: string, options: { quiet?: boolean; unit?: string } = {}): Progress {
  const unit = options.unit ?? 'frames';
  if (options.quiet) return { update: () => undefined, stop: () => undefined };
  const startedMs = Date.now();
  const tty = process.stderr.isTTY === true;
  let bar: SingleBar | undefined;
  let lastLineMs = 0;
  return {
    update(done, total) {
      const nowMs = Date.now();
      if (nowMs - startedMs < PROGRESS_DELAY_MS) return;
      if (tty) {
        if (!bar) {
          bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {value}/{total} ${unit} | ETA {eta}s`, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
          bar.start(total ?? done, done);
        }
        if (total !== undefined) bar.setTotal(total);
        bar.update(done);
      } else if (nowMs - lastLineMs >= PROGRESS_LINE_INTERVAL_MS) {
        lastLineMs = nowMs;
        process.stderr.write(`${label}: ${done}${total !== undefined ? `/${total} ${unit} (${Math.round((100 * done) / Math.max(1, total))}%)` : ` ${unit}`}\n`);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}
