import { describe, expect, it } from 'vitest';
import { MOT_IOU_THRESHOLD, evaluateMot, type MotFrame } from '../../perception/track/mot-metrics.js';
import { boxIou } from '../../perception/track/assignment.js';
import type { Box } from '../../perception/detect/types.js';
import { seededRandom } from '../support/random.js';
import { thrownBy } from '../support/errors.js';

const A: Box = [0, 0, 10, 10];
const B: Box = [100, 100, 110, 110];
const FAR: Box = [200, 200, 210, 210];

describe('evaluateMot', () => {
  it('scores perfect tracking 1', () => {
    const frames: MotFrame[] = [0, 1, 2].map(() => ({ gt: [{ id: 'a', box: A }, { id: 'b', box: B }], hyp: [{ id: 1, box: A }, { id: 2, box: B }] }));
    expect(evaluateMot(frames)).toMatchObject({ mota: 1, motp: 1, idf1: 1, idSwitches: 0, fp: 0, fn: 0, gtCount: 6, fragments: 0 });
  });

  it('counts one id switch, one FP and one FN (textbook example)', () => {
    const frames: MotFrame[] = [
      { gt: [{ id: 'a', box: A }, { id: 'b', box: B }], hyp: [{ id: 1, box: A }] }, // b missed: FN
      { gt: [{ id: 'a', box: A }], hyp: [{ id: 1, box: A }, { id: 9, box: FAR }] }, // 9 on nothing: FP
      { gt: [{ id: 'a', box: A }], hyp: [{ id: 2, box: A }] }, // a now tracked by 2: IDSW
      { gt: [{ id: 'a', box: A }], hyp: [{ id: 2, box: A }] },
    ];
    const result = evaluateMot(frames);
    // GT 5; MOTA = 1 - (1 + 1 + 1) / 5. IDTP: a <-> 1 or a <-> 2 overlap 2 frames; IDF1 = 2 * 2 / (5 GT + 5 hyp).
    expect(result).toMatchObject({ gtCount: 5, hypCount: 5, fn: 1, fp: 1, idSwitches: 1, matches: 4, idtp: 2, fragments: 0 });
    expect(result.mota).toBeCloseTo(0.4, 12);
    expect(result.idf1).toBeCloseTo(0.4, 12);
    expect(result.idp).toBeCloseTo(0.4, 12);
    expect(result.idr).toBeCloseTo(0.4, 12);
  });

  it('counts a fragmentation when tracking resumes after a miss, and switching back as a second switch', () => {
    const fragmented = evaluateMot([1, 1, 0, 1, 1].map((tracked) => ({ gt: [{ id: 'a', box: A }], hyp: tracked ? [{ id: 1, box: A }] : [] })));
    expect(fragmented).toMatchObject({ fn: 1, fragments: 1, idSwitches: 0 });
    expect(fragmented.mota).toBeCloseTo(0.8, 12);
    expect(fragmented.idf1).toBeCloseTo((2 * 4) / (5 + 4), 12);

    const back = evaluateMot([1, 2, 1].map((id) => ({ gt: [{ id: 'a', box: A }], hyp: [{ id, box: A }] })));
    expect(back).toMatchObject({ idSwitches: 2, fragments: 0 });
    expect(back.idf1).toBeCloseTo((2 * 2) / 6, 12);
  });

  it('keeps the previous correspondence while it still overlaps enough, even if another hypothesis fits better', () => {
    const shifted: Box = [2, 0, 12, 10]; // IoU with A: 80 / 120
    const result = evaluateMot([
      { gt: [{ id: 'a', box: A }], hyp: [{ id: 1, box: A }] },
      { gt: [{ id: 'a', box: A }], hyp: [{ id: 1, box: shifted }, { id: 2, box: A }] },
    ]);
    expect(result).toMatchObject({ idSwitches: 0, fp: 1, matches: 2 });
    expect(result.motp).toBeCloseTo((1 + 80 / 120) / 2, 12);
  });

  it('matches at IoU >= the threshold exactly', () => {
    // Width 10 boxes shifted by s: IoU (10 - s) / (10 + s); s = 10/3 gives exactly 0.5.
    const s = 10 / 3;
    const atThreshold: Box = [s, 0, 10 + s, 10];
    expect(boxIou(A, atThreshold)).toBeCloseTo(MOT_IOU_THRESHOLD, 12);
    const iou = boxIou(A, atThreshold);
    expect(evaluateMot([{ gt: [{ id: 'a', box: A }], hyp: [{ id: 1, box: atThreshold }] }], iou).matches).toBe(1);
    expect(evaluateMot([{ gt: [{ id: 'a', box: A }], hyp: [{ id: 1, box: atThreshold }] }], iou + 1e-9).matches).toBe(0);
  });

  it('drops hypotheses on ignored ground truth: neither FP nor counted for IDF1', () => {
    const frames: MotFrame[] = [0, 1].map(() => ({
      gt: [{ id: 'hidden', box: A, ignore: true }, { id: 'b', box: B }],
      hyp: [{ id: 1, box: A }, { id: 2, box: B }],
    }));
    expect(evaluateMot(frames)).toMatchObject({ mota: 1, idf1: 1, fp: 0, gtCount: 2, hypCount: 2 });
    const onlyIgnored = evaluateMot([{ gt: [{ id: 'hidden', box: A, ignore: true }], hyp: [{ id: 1, box: A }] }]);
    expect(onlyIgnored).toMatchObject({ fp: 0, gtCount: 0, hypCount: 0 });
    expect(onlyIgnored.mota).toBeNaN();
    expect(onlyIgnored.idf1).toBeNaN();
  });

  it('finds the IDF1 of a brute-force global id matching on tiny random sequences', () => {
    const random = seededRandom(99);
    const cellBox = (cell: number, shift: number): Box => [cell * 100 + shift, 0, cell * 100 + shift + 10, 10];
    for (let trial = 0; trial < 200; trial++) {
      const frames: MotFrame[] = [];
      for (let f = 0; f < 5; f++) {
        const gt = ['a', 'b', 'c'].filter(() => random() < 0.8).map((id) => ({ id, box: cellBox(Math.floor(random() * 3), 0) }));
        const hyp = [1, 2, 3].filter(() => random() < 0.8).map((id) => ({ id, box: cellBox(Math.floor(random() * 3), Math.floor(random() * 5)) }));
        frames.push({ gt, hyp });
      }
      // Brute force: every injective partial map of gt ids to hyp ids; IDTP = most frames in which mapped pairs overlap.
      const overlap = (g: string, h: number) =>
        frames.filter((frame) => {
          const gb = frame.gt.find((x) => x.id === g);
          const hb = frame.hyp.find((x) => x.id === h);
          return gb !== undefined && hb !== undefined && boxIou(gb.box, hb.box) >= MOT_IOU_THRESHOLD;
        }).length;
      const best = (gts: string[], free: number[]): number => {
        if (gts.length === 0) return 0;
        const [g, ...rest] = gts;
        let value = best(rest, free);
        for (const h of free) value = Math.max(value, overlap(g!, h) + best(rest, free.filter((x) => x !== h)));
        return value;
      };
      const idtp = best(['a', 'b', 'c'], [1, 2, 3]);
      const gtCount = frames.reduce((n, frame) => n + frame.gt.length, 0);
      const hypCount = frames.reduce((n, frame) => n + frame.hyp.length, 0);
      const result = evaluateMot(frames);
      expect(result.idtp).toBe(idtp);
      expect(result.gtCount).toBe(gtCount);
      expect(result.hypCount).toBe(hypCount);
      expect(result.idf1).toBeCloseTo((2 * idtp) / (gtCount + hypCount), 12);
      // CLEAR identities hold whatever the matching: every counted box is matched, missed or false.
      expect(result.matches + result.fn).toBe(gtCount);
      expect(result.matches + result.fp).toBe(hypCount);
    }
  });

  it('rejects bad boxes and duplicate ids with RangeErrors naming the frame and field', () => {
    const badBox = thrownBy(() => evaluateMot([{ gt: [{ id: 'a', box: [0, 0, NaN, 1] }], hyp: [] }]));
    expect(badBox).toMatchObject({
      name: 'RangeError',
      message: 'evaluateMot: frames[0].gt[0].box must be 4 finite numbers [x1, y1, x2, y2] with x2 >= x1 and y2 >= y1, got [0,0,NaN,1]',
    });
    const duplicate = thrownBy(() => evaluateMot([{ gt: [], hyp: [] }, { gt: [], hyp: [{ id: 3, box: A }, { id: 3, box: B }] }]));
    expect(duplicate.message).toBe('evaluateMot: frames[1].hyp[1].id must be unique in the frame, got 3 twice');
    expect(thrownBy(() => evaluateMot([], 0)).message).toBe('evaluateMot: iouThreshold must be in (0, 1], got 0');
  });
});
