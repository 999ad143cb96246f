/**
 * A self-contained HTML report of one pipeline run: summary, per-stage latency histograms, an
 * end-to-end timeline, counters and driver's-view samples.
 *
 * One file, no external resources: inline CSS, inline SVG, images as base64 data: URIs, so it opens
 * offline and can be attached to a ticket. Output is a pure function of the input (no dates, no
 * randomness, fixed number formatting), so two equal runs give byte-identical reports.
 */
// Nearest-rank quantile shared with the evaluation reports; stats.ts has no imports, so this pulls
// nothing of perception into the pipeline.
import { quantile } from '../../perception/evaluate/stats.js';

export interface ReportStageStamp {
  stage: string;
  tEnterNs: bigint;
  tExitNs: bigint;
}

export interface ReportFrame {
  seq: number;
  /** The frame's stage stamps in pipeline order (pipeline clock, ns). */
  stamps: readonly ReportStageStamp[];
  /** Capture-to-publish latency of this frame, ms (undefined if not published). */
  endToEndMs?: number;
  /** Degradation level 0..3. */
  degradationLevel?: number;
  /** AR overlays withheld by the watchdog. */
  safeBlank?: boolean;
  /** Faults raised on this frame, e.g. "detect fault: ...". */
  faults?: readonly string[];
  /** Boxes found (undefined = detector skipped the frame). */
  detections?: number;
  /** ADAS warning level shown, e.g. 'none' | 'caution' | 'warning' | 'critical'. */
  warning?: string;
}

export interface ReportSample {
  caption: string;
  jpeg: Uint8Array;
}

export interface RunReportInput {
  title: string;
  /** Lines of the one-screen summary (plain text, shown in a <pre>). */
  summaryLines: readonly string[];
  frames: readonly ReportFrame[];
  counters: Readonly<Record<string, number>>;
  samples: readonly ReportSample[];
  /** e.g. { endToEndMs: 60 } drawn as a dashed target line on the end-to-end histogram. */
  targets?: { endToEndMs?: number };
}

/** Histogram bins between 0 and the (rounded-up) p99; slower samples go to one overflow bin. */
export const HISTOGRAM_BINS = 30;
/** Frames drawn on the timeline; more would make rows thinner than a pixel. */
export const TIMELINE_MAX_FRAMES = 300;
/** Digits after the point for milliseconds: microsecond resolution. */
const MS_DIGITS = 3;
const NS_PER_MS = 1e6;

/** Stage colours by first-appearance index (Tableau 10): stable across runs with the same stages. */
const STAGE_PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#e15759'];
const FAULT_COLOUR = '#d62728';
const SAFE_BLANK_COLOUR = '#222222'; // not in the stage palette
const E2E_COLOUR = '#1f3b73';
const DEGRADATION_COLOUR = '#8c564b';
const TARGET_COLOUR = '#d62728';

// Plot geometry, SVG user units (px).
const HIST_WIDTH = 420;
const HIST_HEIGHT = 140;
const HIST_MARGIN = { left: 36, right: 8, top: 8, bottom: 24 };
const TIMELINE_WIDTH = 1100;
/** Widest timeline, px, and the width the median frame gets when that fits. */
const TIMELINE_MAX_WIDTH_PX = 12_000;
const TIMELINE_FRAME_MIN_PX = 60;
const TIMELINE_MARGIN = { left: 56, right: 12, top: 8, bottom: 26 };
const CHART_HEIGHT = 160;
const STRIP_HEIGHT = 50;

const CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
pre.summary { background: #f6f6f6; padding: 10px; overflow-x: auto; }
.scroll { overflow-x: auto; max-width: 100%; }
.histograms { display: flex; flex-wrap: wrap; gap: 16px; }
.histogram { border: 1px solid #e4e4e4; padding: 8px; }
.histogram h3 { font-size: 14px; margin: 0 0 4px; }
.stats { font-family: ui-monospace, monospace; font-size: 12px; margin: 0; }
.stats span { margin-right: 10px; white-space: nowrap; }
svg text { font: 10px sans-serif; fill: #444; }
.legend span.swatch { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: middle; }
table.counters { border-collapse: collapse; } table.counters td, table.counters th { border: 1px solid #ddd; padding: 2px 8px; }
table.counters td.value { text-align: right; font-family: ui-monospace, monospace; }
figure { display: inline-block; margin: 8px; } figure img { max-width: 640px; display: block; }
p.note { color: #a33; }
`;

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!);
}

const HTML_ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Renders the report as one HTML document (string). Deterministic for equal input. */
export function renderRunReport(input: RunReportInput): string {
  const stageNames = stageOrder(input.frames);
  const parts: string[] = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(input.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    `<h1>${escapeHtml(input.title)}</h1>`,
    `<pre class="summary">${escapeHtml(input.summaryLines.join('\n'))}</pre>`,
    latencySection(input, stageNames),
    timelineSection(input.frames, stageNames, input.targets?.endToEndMs),
    countersSection(input.counters),
    samplesSection(input.samples),
    '</body></html>',
    '',
  ];
  return parts.join('\n');
}

/** Stage names in order of first appearance over all frames' stamps. */
function stageOrder(frames: readonly ReportFrame[]): string[] {
  const seen = new Set<string>();
  for (const frame of frames) for (const stamp of frame.stamps) seen.add(stamp.stage);
  return [...seen];
}

function stageColour(index: number): string {
  return STAGE_PALETTE[index % STAGE_PALETTE.length]!;
}

function durationMs(stamp: ReportStageStamp): number {
  return Number(stamp.tExitNs - stamp.tEnterNs) / NS_PER_MS;
}

function fmtMs(valueMs: number): string {
  return Number.isFinite(valueMs) ? valueMs.toFixed(MS_DIGITS) : '-';
}

/** A coordinate for SVG: two decimals are far below a pixel and keep the file small. */
function px(value: number): string {
  return String(Math.round(value * 100) / 100);
}

// ---- Section 2: latency histograms -------------------------------------------------------------

function latencySection(input: RunReportInput, stageNames: readonly string[]): string {
  const perStage = new Map<string, number[]>(stageNames.map((name) => [name, []]));
  for (const frame of input.frames) for (const stamp of frame.stamps) perStage.get(stamp.stage)!.push(durationMs(stamp));
  const endToEnd: number[] = [];
  for (const frame of input.frames) if (frame.endToEndMs !== undefined && Number.isFinite(frame.endToEndMs)) endToEnd.push(frame.endToEndMs);

  const blocks = stageNames.map((name, i) => histogramBlock(name, 'stage', perStage.get(name)!, stageColour(i), undefined));
  blocks.push(histogramBlock('end to end (capture to publish)', 'end-to-end', endToEnd, E2E_COLOUR, input.targets?.endToEndMs));
  return ['<h2>Latency per stage</h2>', '<div class="histograms">', ...blocks, '</div>'].join('\n');
}

/** The next 1, 2, 2.5 or 5 x 10^k at or above `value` (> 0): round bin edges. */
function niceCeil(value: number): number {
  const exponent = Math.floor(Math.log10(value));
  const base = 10 ** exponent;
  for (const m of [1, 2, 2.5, 5, 10]) if (m * base >= value * (1 - 1e-12)) return m * base;
  return 10 * base;
}

function histogramBlock(name: string, kind: 'stage' | 'end-to-end', valuesMs: readonly number[], colour: string, targetMs: number | undefined): string {
  const title = `<h3>${escapeHtml(name)}</h3>`;
  const attr = kind === 'stage' ? `data-hist-stage="${escapeHtml(name)}"` : 'data-hist="end-to-end"';
  if (valuesMs.length === 0) return `<div class="histogram" ${attr}>${title}<p class="stats">no samples</p></div>`;

  const maxMs = Math.max(...valuesMs);
  const p99Ms = quantile(valuesMs, 0.99);
  // Bins span 0..p99 so one stall does not squash the body of the distribution into a bar or two.
  // 5% headroom keeps a spike at p99 off the overflow edge.
  const topMs = niceCeil(Math.max(p99Ms * 1.05, targetMs ?? 0, 1e-3));
  const binMs = topMs / HISTOGRAM_BINS;
  const counts = new Array<number>(HISTOGRAM_BINS + 1).fill(0);
  for (const v of valuesMs) counts[v > topMs ? HISTOGRAM_BINS : Math.min(HISTOGRAM_BINS - 1, Math.floor(v / binMs))]!++;
  const maxCount = Math.max(...counts);

  const plotW = HIST_WIDTH - HIST_MARGIN.left - HIST_MARGIN.right;
  const plotH = HIST_HEIGHT - HIST_MARGIN.top - HIST_MARGIN.bottom;
  const barW = plotW / (HISTOGRAM_BINS + 1);
  const x0 = HIST_MARGIN.left;
  const yBase = HIST_MARGIN.top + plotH;
  const svg: string[] = [`<svg class="hist" width="${HIST_WIDTH}" height="${HIST_HEIGHT}" viewBox="0 0 ${HIST_WIDTH} ${HIST_HEIGHT}" role="img">`];
  for (let b = 0; b <= HISTOGRAM_BINS; b++) {
    const count = counts[b]!;
    if (count === 0) continue;
    const h = (count / maxCount) * plotH;
    const overflow = b === HISTOGRAM_BINS;
    const range = overflow ? `> ${fmtMs(topMs)} ms` : `${fmtMs(b * binMs)}-${fmtMs((b + 1) * binMs)} ms`;
    svg.push(
      `<rect class="bin${overflow ? ' overflow' : ''}" x="${px(x0 + b * barW + 0.5)}" y="${px(yBase - h)}" width="${px(barW - 1)}" height="${px(h)}" fill="${overflow ? FAULT_COLOUR : colour}"><title>${range}: ${count}</title></rect>`,
    );
  }
  svg.push(`<line x1="${x0}" y1="${yBase}" x2="${x0 + plotW}" y2="${yBase}" stroke="#888"/>`);
  for (const t of [0, 0.5, 1]) {
    const x = x0 + t * HISTOGRAM_BINS * barW;
    const anchor = t === 0 ? 'start' : t === 1 ? 'end' : 'middle';
    svg.push(`<text x="${px(x)}" y="${yBase + 14}" text-anchor="${anchor}">${fmtTick(t * topMs)}${t === 1 ? ' ms' : ''}</text>`);
  }
  svg.push(`<text x="${px(x0 + (HISTOGRAM_BINS + 0.5) * barW)}" y="${yBase + 14}" text-anchor="middle">&gt;</text>`);
  svg.push(`<text x="${x0 - 4}" y="${HIST_MARGIN.top + 8}" text-anchor="end">${maxCount}</text>`);
  if (targetMs !== undefined && Number.isFinite(targetMs)) {
    const x = x0 + Math.min(targetMs / binMs, HISTOGRAM_BINS) * barW;
    svg.push(
      `<line class="target" x1="${px(x)}" y1="${HIST_MARGIN.top}" x2="${px(x)}" y2="${yBase}" stroke="${TARGET_COLOUR}" stroke-dasharray="4 3"><title>target ${fmtMs(targetMs)} ms</title></line>`,
    );
  }
  svg.push('</svg>');

  const stats = [
    ['count', String(valuesMs.length)],
    ['p50', fmtMs(quantile(valuesMs, 0.5))],
    ['p90', fmtMs(quantile(valuesMs, 0.9))],
    ['p99', fmtMs(p99Ms)],
    ['max', fmtMs(maxMs)],
  ]
    .map(([key, value]) => `<span>${key} <b data-stat="${key}">${value}</b>${key === 'count' ? '' : ' ms'}</span>`)
    .join('');
  const target = targetMs !== undefined ? `<span>target <b data-stat="target">${fmtMs(targetMs)}</b> ms</span>` : '';
  return `<div class="histogram" ${attr}>${title}${svg.join('')}<p class="stats">${stats}${target}</p></div>`;
}

// ---- Section 3: timeline and per-frame chart ---------------------------------------------------

/** About `targetTicks` round tick values from 0 to `maxValue`. */
function ticks(maxValue: number, targetTicks: number): number[] {
  if (!(maxValue > 0)) return [0];
  const step = niceCeil(maxValue / targetTicks);
  const out: number[] = [];
  for (let i = 0; i * step <= maxValue * (1 + 1e-9); i++) out.push(i * step);
  return out;
}

function timelineSection(frames: readonly ReportFrame[], stageNames: readonly string[], targetMs: number | undefined): string {
  const out: string[] = ['<h2>End-to-end timeline</h2>'];
  if (frames.length === 0) return [...out, '<p>No frames.</p>'].join('\n');
  const shown = frames.slice(0, TIMELINE_MAX_FRAMES);
  if (frames.length > shown.length) out.push(`<p class="note">Showing the first ${shown.length} of ${frames.length} frames.</p>`);

  const legend = stageNames.map((name, i) => `<span class="swatch" style="background:${stageColour(i)}"></span>${escapeHtml(name)}`);
  legend.push(`<span class="swatch" style="background:${FAULT_COLOUR}"></span>fault`);
  legend.push(`<span class="swatch" style="background:${SAFE_BLANK_COLOUR}"></span>safe blank`);
  out.push(`<p class="legend">${legend.join('')}</p>`);
  out.push(timelineSvg(shown, stageNames));
  out.push('<h3>Per frame: end-to-end latency and degradation level</h3>');
  out.push(frameChartSvg(frames, targetMs));
  return out.join('\n');
}

function timelineSvg(frames: readonly ReportFrame[], stageNames: readonly string[]): string {
  // Origin: the first frame's first stamp in a well-formed run; the minimum also covers odd input.
  let t0Ns: bigint | undefined;
  let tEndNs: bigint | undefined;
  for (const frame of frames) {
    for (const s of frame.stamps) {
      if (t0Ns === undefined || s.tEnterNs < t0Ns) t0Ns = s.tEnterNs;
      if (tEndNs === undefined || s.tExitNs > tEndNs) tEndNs = s.tExitNs;
    }
  }
  const spanMs = t0Ns === undefined || tEndNs === undefined ? 0 : Number(tEndNs - t0Ns) / NS_PER_MS;
  const rowH = Math.max(2, Math.min(12, Math.floor(600 / frames.length)));
  const fitW = TIMELINE_WIDTH - TIMELINE_MARGIN.left - TIMELINE_MARGIN.right;
  // Fitting a whole run into the page squeezes each frame to a pixel or two; widen (the page scrolls)
  // until the median frame spans TIMELINE_FRAME_MIN_PX, up to TIMELINE_MAX_WIDTH_PX.
  const frameSpansMs: number[] = [];
  for (const frame of frames) {
    if (frame.stamps.length > 0) frameSpansMs.push(Number(frame.stamps[frame.stamps.length - 1]!.tExitNs - frame.stamps[0]!.tEnterNs) / NS_PER_MS);
  }
  const medianSpanMs = frameSpansMs.length > 0 ? quantile(frameSpansMs, 0.5) : 0;
  const wantedW = medianSpanMs > 0 ? (spanMs * TIMELINE_FRAME_MIN_PX) / medianSpanMs : fitW;
  const plotW = Math.max(fitW, Math.min(wantedW, TIMELINE_MAX_WIDTH_PX));
  const width = TIMELINE_MARGIN.left + plotW + TIMELINE_MARGIN.right;
  const plotH = rowH * frames.length;
  const height = TIMELINE_MARGIN.top + plotH + TIMELINE_MARGIN.bottom;
  const scale = spanMs > 0 ? plotW / spanMs : 0;
  const x0 = TIMELINE_MARGIN.left;
  const colourOf = new Map(stageNames.map((name, i) => [name, stageColour(i)]));
  const svg: string[] = [`<div class="scroll"><svg class="timeline" width="${px(width)}" height="${height}" viewBox="0 0 ${px(width)} ${height}" role="img">`];

  for (const t of ticks(spanMs, Math.max(10, Math.round(plotW / 100)))) {
    const x = x0 + t * scale;
    svg.push(`<line x1="${px(x)}" y1="${TIMELINE_MARGIN.top}" x2="${px(x)}" y2="${TIMELINE_MARGIN.top + plotH}" stroke="#eee"/>`);
    svg.push(`<text x="${px(x)}" y="${TIMELINE_MARGIN.top + plotH + 12}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  svg.push(`<text x="${px(x0 + plotW)}" y="${height - 2}" text-anchor="end">ms since first stage entry</text>`);

  frames.forEach((frame, row) => {
    const y = TIMELINE_MARGIN.top + row * rowH;
    const rectH = Math.max(1, rowH - 1);
    if (rowH >= 8 || row % 10 === 0) svg.push(`<text x="${x0 - 10}" y="${px(y + rowH - 1)}" text-anchor="end">${frame.seq}</text>`);
    for (const s of frame.stamps) {
      const x = x0 + (Number(s.tEnterNs - t0Ns!) / NS_PER_MS) * scale;
      // At least half a pixel wide so sub-pixel stages stay visible.
      const w = Math.max(0.5, durationMs(s) * scale);
      svg.push(
        `<rect class="span" data-stage="${escapeHtml(s.stage)}" x="${px(x)}" y="${px(y)}" width="${px(w)}" height="${rectH}" fill="${colourOf.get(s.stage)!}"><title>frame ${frame.seq} ${escapeHtml(s.stage)}: ${fmtMs(durationMs(s))} ms</title></rect>`,
      );
    }
    const faults = frame.faults ?? [];
    if (faults.length > 0) {
      svg.push(
        `<rect class="mark fault" data-seq="${frame.seq}" x="${x0 - 8}" y="${px(y)}" width="3" height="${rectH}" fill="${FAULT_COLOUR}"><title>frame ${frame.seq}: ${escapeHtml(faults.join('; '))}</title></rect>`,
      );
    }
    if (frame.safeBlank === true) {
      svg.push(
        `<rect class="mark safe-blank" data-seq="${frame.seq}" x="${x0 - 4}" y="${px(y)}" width="3" height="${rectH}" fill="${SAFE_BLANK_COLOUR}"><title>frame ${frame.seq}: safe blank</title></rect>`,
      );
    }
  });
  svg.push('</svg></div>');
  return svg.join('\n');
}

function fmtTick(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}

/** endToEndMs over frame index (gaps where unpublished), and degradation level as a step line in a strip below. */
function frameChartSvg(frames: readonly ReportFrame[], targetMs: number | undefined): string {
  const n = frames.length;
  const plotW = TIMELINE_WIDTH - TIMELINE_MARGIN.left - TIMELINE_MARGIN.right;
  const x0 = TIMELINE_MARGIN.left;
  const top = TIMELINE_MARGIN.top;
  const stripTop = top + CHART_HEIGHT + 16;
  const height = stripTop + STRIP_HEIGHT + TIMELINE_MARGIN.bottom;
  const xOf = (i: number): number => x0 + (n > 1 ? (i / (n - 1)) * plotW : plotW / 2);
  let maxE2eMs = targetMs ?? 0;
  for (const f of frames) if (f.endToEndMs !== undefined && Number.isFinite(f.endToEndMs)) maxE2eMs = Math.max(maxE2eMs, f.endToEndMs);
  const yTicks = ticks(maxE2eMs, 4);
  const yTopMs = yTicks[yTicks.length - 1]! > 0 ? yTicks[yTicks.length - 1]! : 1;
  const yOf = (ms: number): number => top + CHART_HEIGHT * (1 - ms / yTopMs);
  const svg: string[] = [`<svg class="frame-chart" width="${TIMELINE_WIDTH}" height="${height}" viewBox="0 0 ${TIMELINE_WIDTH} ${height}" role="img">`];

  for (const t of yTicks) {
    svg.push(`<line x1="${x0}" y1="${px(yOf(t))}" x2="${x0 + plotW}" y2="${px(yOf(t))}" stroke="#eee"/>`);
    svg.push(`<text x="${x0 - 4}" y="${px(yOf(t) + 3)}" text-anchor="end">${fmtTick(t)}</text>`);
  }
  svg.push(`<text x="${x0 + 4}" y="${top + 10}" fill="${E2E_COLOUR}">end to end, ms</text>`);
  if (targetMs !== undefined && Number.isFinite(targetMs)) {
    svg.push(`<line class="target" x1="${x0}" y1="${px(yOf(targetMs))}" x2="${x0 + plotW}" y2="${px(yOf(targetMs))}" stroke="${TARGET_COLOUR}" stroke-dasharray="4 3"/>`);
  }
  // One polyline per run of published frames, so an unpublished frame leaves a gap.
  let run: string[] = [];
  const flush = (): void => {
    if (run.length > 0) svg.push(`<polyline class="e2e" fill="none" stroke="${E2E_COLOUR}" stroke-width="1" points="${run.join(' ')}"/>`);
    run = [];
  };
  frames.forEach((f, i) => {
    if (f.endToEndMs === undefined || !Number.isFinite(f.endToEndMs)) return flush();
    run.push(`${px(xOf(i))},${px(yOf(f.endToEndMs))}`);
  });
  flush();

  // Degradation strip, levels 0..3, as a step line.
  const levelMax = 3;
  const yLevel = (level: number): number => stripTop + STRIP_HEIGHT * (1 - Math.min(Math.max(level, 0), levelMax) / levelMax);
  svg.push(`<rect x="${x0}" y="${stripTop}" width="${plotW}" height="${STRIP_HEIGHT}" fill="none" stroke="#eee"/>`);
  for (let level = 0; level <= levelMax; level++) svg.push(`<text x="${x0 - 4}" y="${px(yLevel(level) + 3)}" text-anchor="end">${level}</text>`);
  svg.push(`<text x="${x0 + 4}" y="${stripTop + 10}" fill="${DEGRADATION_COLOUR}">degradation level</text>`);
  const step: string[] = [];
  let previousY: string | undefined;
  frames.forEach((f, i) => {
    if (f.degradationLevel === undefined) return;
    const x = px(xOf(i));
    const y = px(yLevel(f.degradationLevel));
    if (previousY !== undefined && previousY !== y) step.push(`${x},${previousY}`); // the riser of the step
    step.push(`${x},${y}`);
    previousY = y;
  });
  if (step.length > 0) svg.push(`<polyline class="degradation" fill="none" stroke="${DEGRADATION_COLOUR}" stroke-width="1.5" points="${step.join(' ')}"/>`);

  for (const t of ticks(Math.max(n - 1, 0), 10)) {
    svg.push(`<text x="${px(xOf(t))}" y="${stripTop + STRIP_HEIGHT + 12}" text-anchor="middle">${t}</text>`);
  }
  svg.push(`<text x="${x0 + plotW}" y="${height - 2}" text-anchor="end">frame index</text>`);
  svg.push('</svg>');
  return svg.join('\n');
}

// ---- Sections 4 and 5: counters, samples -------------------------------------------------------

function countersSection(counters: Readonly<Record<string, number>>): string {
  // Code-unit order, not localeCompare: the same bytes on every machine.
  const names = Object.keys(counters).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const rows = names.map((name) => `<tr><td>${escapeHtml(name)}</td><td class="value">${escapeHtml(String(counters[name]))}</td></tr>`);
  return ['<h2>Counters</h2>', '<table class="counters"><thead><tr><th>counter</th><th>value</th></tr></thead><tbody>', ...rows, '</tbody></table>'].join('\n');
}

function samplesSection(samples: readonly ReportSample[]): string {
  const figures = samples.map((s) => {
    const base64 = Buffer.from(s.jpeg.buffer, s.jpeg.byteOffset, s.jpeg.byteLength).toString('base64');
    return `<figure><img src="data:image/jpeg;base64,${base64}" alt="${escapeHtml(s.caption)}"><figcaption>${escapeHtml(s.caption)}</figcaption></figure>`;
  });
  return ['<h2>Driver\u2019s view samples</h2>', ...(figures.length > 0 ? figures : ['<p>No samples.</p>'])].join('\n');
}
