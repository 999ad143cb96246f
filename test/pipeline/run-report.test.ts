import { describe, expect, it } from 'vitest';
import { escapeHtml, renderRunReport, TIMELINE_MAX_FRAMES, type ReportFrame, type RunReportInput } from '../../pipeline/report/run-report.js';

const NS_PER_MS = 1_000_000n;
const FRAME_PERIOD_NS = 33n * NS_PER_MS;
const ODD_STAGE = '<x&y>';
const FRAME_COUNT = 51; // odd, so the median is one sample whatever the quantile convention

/** detect takes 10 + 0.1 k ms for k = 0..50, in a scrambled order; its median is k = 25, 12.5 ms. */
function detectUs(i: number): bigint {
  const k = (i * 7) % FRAME_COUNT; // 7 is coprime with 51: a permutation of 0..50
  return 10_000n + BigInt(k) * 100n;
}

function frames(count: number): ReportFrame[] {
  const out: ReportFrame[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = 1_000_000_000n + BigInt(i) * FRAME_PERIOD_NS; // a pipeline clock that does not start at 0
    const decodeEnd = t0 + 2n * NS_PER_MS;
    const detectEnd = decodeEnd + detectUs(i % FRAME_COUNT) * 1000n;
    const oddEnd = detectEnd + 1n * NS_PER_MS;
    out.push({
      seq: i,
      stamps: [
        { stage: 'decode', tEnterNs: t0, tExitNs: decodeEnd },
        { stage: 'detect', tEnterNs: decodeEnd, tExitNs: detectEnd },
        { stage: ODD_STAGE, tEnterNs: detectEnd, tExitNs: oddEnd },
      ],
      endToEndMs: Number(oddEnd - t0) / 1e6,
      degradationLevel: i >= 20 && i < 30 ? 2 : 0,
      safeBlank: i === 17,
      faults: i === 5 || i === 17 ? [`detect fault: <timeout> & retry #${i}`] : [],
      detections: i % 4,
      warning: 'none',
    });
  }
  return out;
}

const JPEG_BYTES = Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 250, 251, 0xff, 0xd9);

function input(overrides: Partial<RunReportInput> = {}): RunReportInput {
  // The sample is a view into a larger buffer, to catch encoders that ignore byteOffset.
  const backing = new Uint8Array(JPEG_BYTES.length + 8).fill(0x55);
  backing.set(JPEG_BYTES, 4);
  return {
    title: 'Run <demo> & friends',
    summaryLines: ['frames 51', 'e2e p99 < 60 ms & "ok"'],
    frames: frames(FRAME_COUNT),
    counters: { 'zeta.dropped': 3, 'alpha.frames': 51, 'mid<1>': 7 },
    samples: [{ caption: 'frame 10 <near>', jpeg: backing.subarray(4, 4 + JPEG_BYTES.length) }],
    targets: { endToEndMs: 60 },
    ...overrides,
  };
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

/** The text of stat `key` printed in the histogram block whose opening tag carries `blockAttr`. */
function statOf(html: string, blockAttr: string, key: string): string | undefined {
  const start = html.indexOf(blockAttr);
  if (start < 0) return undefined;
  const end = html.indexOf('</div>', start);
  const match = new RegExp(`data-stat="${key}">([^<]*)<`).exec(html.slice(start, end));
  return match?.[1];
}

describe('renderRunReport', () => {
  const html = renderRunReport(input());

  it('is one HTML document with the escaped title and summary', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(count(html, '<html')).toBe(1);
    expect(html).toContain('<title>Run &lt;demo&gt; &amp; friends</title>');
    expect(html).toContain('<pre class="summary">frames 51\ne2e p99 &lt; 60 ms &amp; &quot;ok&quot;</pre>');
  });

  it('draws one histogram per stage, in first-appearance order, plus end to end', () => {
    const attrs = ['data-hist-stage="decode"', 'data-hist-stage="detect"', `data-hist-stage="${escapeHtml(ODD_STAGE)}"`, 'data-hist="end-to-end"'];
    for (const a of attrs) expect(count(html, a), a).toBe(1);
    const positions = attrs.map((a) => html.indexOf(a));
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(count(html, '<div class="histogram"')).toBe(4);
  });

  it('prints count, p50 (the known median), p99 and max per stage', () => {
    expect(statOf(html, 'data-hist-stage="detect"', 'count')).toBe('51');
    expect(statOf(html, 'data-hist-stage="detect"', 'p50')).toBe('12.500');
    expect(statOf(html, 'data-hist-stage="detect"', 'max')).toBe('15.000');
    expect(statOf(html, 'data-hist-stage="decode"', 'p50')).toBe('2.000');
    expect(statOf(html, `data-hist-stage="${escapeHtml(ODD_STAGE)}"`, 'p90')).toBe('1.000');
    // end to end = 2 + detect + 1 ms
    expect(statOf(html, 'data-hist="end-to-end"', 'p50')).toBe('15.500');
    expect(statOf(html, 'data-hist="end-to-end"', 'target')).toBe('60.000');
  });

  it('puts every sample in a histogram bin (bar titles sum to the count)', () => {
    const start = html.indexOf('data-hist-stage="detect"');
    const block = html.slice(start, html.indexOf('</div>', start));
    const counts = [...block.matchAll(/<rect class="bin[^"]*"[^>]*><title>[^<]*: (\d+)<\/title>/g)].map((m) => Number(m[1]));
    expect(counts.length).toBeGreaterThan(1);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(FRAME_COUNT);
  });

  it('draws the end-to-end target as a dashed line', () => {
    expect(count(html, '<line class="target"')).toBe(2); // histogram and per-frame chart
    expect(renderRunReport(input({ targets: {} }))).not.toContain('class="target"');
  });

  it('draws one timeline rect per stage per frame', () => {
    expect(count(html, '<rect class="span" data-stage="decode"')).toBe(FRAME_COUNT);
    expect(count(html, '<rect class="span" data-stage="detect"')).toBe(FRAME_COUNT);
    expect(count(html, `<rect class="span" data-stage="${escapeHtml(ODD_STAGE)}"`)).toBe(FRAME_COUNT);
    // x is time: frame 0's detect starts to the right of its decode.
    const first = /<rect class="span" data-stage="decode" x="([\d.]+)"/.exec(html);
    const second = /<rect class="span" data-stage="detect" x="([\d.]+)"/.exec(html);
    expect(Number(second![1]) - Number(first![1])).toBeGreaterThan(0);
  });

  it('caps the timeline at TIMELINE_MAX_FRAMES with a note', () => {
    const many = renderRunReport(input({ frames: frames(TIMELINE_MAX_FRAMES + 10) }));
    expect(count(many, '<rect class="span" data-stage="detect"')).toBe(TIMELINE_MAX_FRAMES);
    expect(many).toContain(`first ${TIMELINE_MAX_FRAMES} of ${TIMELINE_MAX_FRAMES + 10} frames`);
    expect(html).not.toContain('Showing the first');
  });

  it('marks frames with faults and safe blanks, with the escaped fault text', () => {
    expect(count(html, 'class="mark fault"')).toBe(2);
    expect(html).toContain('class="mark fault" data-seq="5"');
    expect(html).toContain('class="mark fault" data-seq="17"');
    expect(count(html, 'class="mark safe-blank"')).toBe(1);
    expect(html).toContain('class="mark safe-blank" data-seq="17"');
    expect(html).toContain('detect fault: &lt;timeout&gt; &amp; retry #5');
  });

  it('charts end to end and the degradation level over frame index', () => {
    expect(count(html, '<polyline class="e2e"')).toBe(1);
    const step = /<polyline class="degradation"[^>]*points="([^"]*)"/.exec(html);
    expect(step).not.toBeNull();
    // 51 points plus one riser at each of the two level changes.
    expect(step![1]!.split(' ')).toHaveLength(FRAME_COUNT + 2);
    // An unpublished frame breaks the e2e line in two.
    const gap = frames(FRAME_COUNT);
    delete gap[10]!.endToEndMs;
    expect(count(renderRunReport(input({ frames: gap })), '<polyline class="e2e"')).toBe(2);
  });

  it('lists counters sorted by name, escaped', () => {
    const a = html.indexOf('<td>alpha.frames</td>');
    const m = html.indexOf('<td>mid&lt;1&gt;</td>');
    const z = html.indexOf('<td>zeta.dropped</td>');
    expect(a).toBeGreaterThan(0);
    expect(a).toBeLessThan(m);
    expect(m).toBeLessThan(z);
  });

  it('embeds the samples as base64 of exactly the given bytes', () => {
    const base64 = Buffer.from(JPEG_BYTES).toString('base64');
    expect(html).toContain(`<figure><img src="data:image/jpeg;base64,${base64}"`);
    expect(html).toContain('<figcaption>frame 10 &lt;near&gt;</figcaption>');
  });

  it('escapes a stage name with markup characters everywhere it appears', () => {
    expect(html).not.toContain(ODD_STAGE);
    expect(html).toContain('&lt;x&amp;y&gt;');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('references no external resource', () => {
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/<script|<link|@import|url\(/i);
  });

  it('is deterministic for equal input', () => {
    expect(renderRunReport(input())).toBe(html);
  });

  it('copes with no frames and no samples', () => {
    const empty = renderRunReport(input({ frames: [], samples: [], counters: {} }));
    expect(empty).toContain('No frames.');
    expect(empty).toContain('No samples.');
    expect(empty).toContain('data-hist="end-to-end"');
  });
});
