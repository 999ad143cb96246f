import { describe, expect, it } from 'vitest';
import {
  CONFIRM_HITS,
  HIGH_SCORE,
  LOW_SCORE,
  MAX_COAST_S,
  MultiObjectTracker,
  NEW_TRACK_SCORE,
  OUTPUT_COAST_S,
  type Track,
  type TrackInput,
  type TrackRejection,
} from '../../perception/track/tracker.js';
import { boxIou } from '../../perception/track/assignment.js';
import { hudClassOf, type Box } from '../../perception/detect/types.js';
import { thrownBy } from '../support/errors.js';

const T0_NS = 1_000_000_000n;
const FRAME_NS = 100_000_000n;
/** Capture time of frame k at 10 Hz. */
const t = (k: number): bigint => T0_NS + BigInt(k) * FRAME_NS;

function input(box: Box, score = 0.9, className = 'car', extra: Partial<TrackInput> = {}): TrackInput {
  const hudClass = hudClassOf(className);
  return { detection: { classId: 0, className, ...(hudClass ? { hudClass } : {}), score, box }, ...extra };
}

/** A 100 x 100 box with its top-left corner at (x, y). */
const square = (x: number, y: number): Box => [x, y, x + 100, y + 100];

const snapshot = (tracks: readonly Track[]) => tracks.map((track) => ({ id: track.id, state: track.state, box: [...track.box] as Box, hits: track.hits }));

describe('MultiObjectTracker', () => {
  it('confirms a track at CONFIRM_HITS and keeps its id while the object moves', () => {
    const tracker = new MultiObjectTracker({ outputTentative: true });
    expect(CONFIRM_HITS).toBe(2);
    const first = snapshot(tracker.update(t(0), [input(square(100, 100))]));
    expect(first).toEqual([{ id: 1, state: 'tentative', box: square(100, 100), hits: 1 }]);
    for (let k = 1; k < 10; k++) {
      const tracks = tracker.update(t(k), [input(square(100 + 20 * k, 100))]);
      expect(tracks).toHaveLength(1);
      expect(tracks[0]!.id).toBe(1);
      expect(tracks[0]!.state).toBe('confirmed');
      expect(boxIou(tracks[0]!.box, square(100 + 20 * k, 100))).toBeGreaterThan(0.9);
    }
    expect(tracker.stats.tracksBorn).toBe(1);
    expect(tracker.stats.tracksConfirmed).toBe(1);
  });

  it('does not return tentative tracks unless asked', () => {
    const tracker = new MultiObjectTracker();
    expect(tracker.update(t(0), [input(square(0, 0))])).toHaveLength(0);
    expect(tracker.update(t(1), [input(square(0, 0))])).toHaveLength(1);
  });

  it('keeps the ids of two objects crossing in the image', () => {
    const tracker = new MultiObjectTracker();
    const a = (k: number) => square(100 + 40 * k, 300);
    const b = (k: number) => square(900 - 40 * k, 340);
    let idA = 0;
    let idB = 0;
    for (let k = 0; k <= 20; k++) {
      const tracks = snapshot(tracker.update(t(k), k % 2 === 0 ? [input(a(k)), input(b(k))] : [input(b(k)), input(a(k))]));
      if (k === 1) {
        idA = tracks.find((track) => boxIou(track.box, a(k)) > 0.9)!.id;
        idB = tracks.find((track) => boxIou(track.box, b(k)) > 0.9)!.id;
        expect(idA).not.toBe(idB);
      }
      if (k >= 1) {
        expect(boxIou(tracks.find((track) => track.id === idA)!.box, a(k))).toBeGreaterThan(0.8);
        expect(boxIou(tracks.find((track) => track.id === idB)!.box, b(k))).toBeGreaterThan(0.8);
      }
    }
    expect(tracker.stats.tracksBorn).toBe(2);
  });

  it('keeps the ids of two objects at different ranges whose image boxes coincide, by world gating', () => {
    // A pedestrian 10 m ahead stands exactly in front of a car 30 m ahead (same image box), then
    // both move apart in the image. The boxes alone cannot tell which track is which.
    const x = (k: number) => 40 * Math.max(0, k - 4);
    const near = (k: number): TrackInput => input(square(500 - x(k), 300), 0.9, 'car', { positionM: { x: 10, y: 0.1 * x(k) / 10 }, rangeSigmaM: 1, lateralSigmaM: 0.3 });
    const far = (k: number): TrackInput => input(square(500 + x(k), 300), 0.9, 'car', { positionM: { x: 30, y: -0.3 * x(k) / 10 }, rangeSigmaM: 3, lateralSigmaM: 0.5 });
    for (const nearFirst of [true, false]) {
      const tracker = new MultiObjectTracker();
      let idNear = 0;
      for (let k = 0; k <= 12; k++) {
        // Input order flips every frame: ties between identical boxes must not decide.
        const tracks = tracker.update(t(k), nearFirst === (k % 2 === 0) ? [near(k), far(k)] : [far(k), near(k)]);
        if (k === 1) idNear = tracks.find((track) => track.positionM!.x < 20)!.id;
        if (k >= 1) {
          const nearTrack = tracks.find((track) => track.id === idNear)!;
          expect(nearTrack.positionM!.x).toBeCloseTo(10, 0);
          expect(boxIou(nearTrack.box, near(k).detection.box)).toBeGreaterThan(0.7);
        }
      }
      expect(tracker.stats.tracksBorn).toBe(2);
    }
  });

  it('keeps a confirmed track alive on a low-score detection but never births one from it', () => {
    const tracker = new MultiObjectTracker({ outputTentative: true });
    const lowScore = 0.2;
    expect(lowScore).toBeGreaterThanOrEqual(LOW_SCORE);
    expect(lowScore).toBeLessThan(HIGH_SCORE);
    tracker.update(t(0), [input(square(100, 100))]);
    tracker.update(t(1), [input(square(100, 100))]);
    const tracks = snapshot(tracker.update(t(2), [input(square(102, 100), lowScore), input(square(600, 600), lowScore)]));
    expect(tracks).toEqual([expect.objectContaining({ id: 1, state: 'confirmed', hits: 3 })]);
    expect(tracker.update(t(3), [input(square(600, 600), lowScore)]).map((track) => track.state)).toEqual(['coasting']);
    for (let k = 4; k < 8; k++) tracker.update(t(k), [input(square(600, 600), lowScore)]);
    expect(tracker.stats.tracksBorn).toBe(1);
  });

  it('does not revive a coasting track with a low-score detection (ByteTrack stage 2 takes tracked tracks only)', () => {
    const tracker = new MultiObjectTracker();
    tracker.update(t(0), [input(square(100, 100))]);
    tracker.update(t(1), [input(square(100, 100))]);
    expect(tracker.update(t(2), [])[0]!.state).toBe('coasting');
    expect(tracker.update(t(3), [input(square(100, 100), 0.3)])[0]!.state).toBe('coasting');
    expect(tracker.update(t(4), [input(square(100, 100), 0.7)])[0]!.state).toBe('confirmed');
  });

  it('starts tracks only from detections at or above newTrackScore', () => {
    const tracker = new MultiObjectTracker({ outputTentative: true });
    expect(tracker.update(t(0), [input(square(0, 0), (HIGH_SCORE + NEW_TRACK_SCORE) / 2)])).toHaveLength(0);
    expect(tracker.update(t(1), [input(square(0, 0), NEW_TRACK_SCORE)])).toHaveLength(1);
  });

  it('coasts through missed detections on the predicted motion and re-associates with the same id', () => {
    const tracker = new MultiObjectTracker();
    const truth = (k: number) => square(100 + 30 * k, 200);
    for (let k = 0; k < 5; k++) tracker.update(t(k), [input(truth(k))]);
    for (let k = 5; k < 8; k++) {
      const [track] = snapshot(tracker.update(t(k), []));
      expect(track).toMatchObject({ id: 1, state: 'coasting', hits: 5 });
      // The prediction keeps moving at the learned velocity.
      expect(boxIou(track!.box, truth(k))).toBeGreaterThan(0.7);
    }
    const [track] = snapshot(tracker.update(t(8), [input(truth(8))]));
    expect(track).toMatchObject({ id: 1, state: 'confirmed', hits: 6 });
  });

  it('dies when more than maxCoastS has passed since its last hit, exactly at the limit it lives', () => {
    const tracker = new MultiObjectTracker({ outputCoastS: Infinity });
    const lastHitFrame = 1;
    const limitFrame = lastHitFrame + Math.round(MAX_COAST_S * 10);
    tracker.update(t(0), [input(square(100, 100))]);
    tracker.update(t(lastHitFrame), [input(square(100, 100))]);
    for (let k = lastHitFrame + 1; k <= limitFrame; k++) expect(tracker.update(t(k), [])).toHaveLength(1);
    expect(tracker.update(t(limitFrame) + 1n, [])).toHaveLength(0);
    expect(tracker.stats.tracksDied).toBe(1);
  });

  it('returns a coasting track only up to outputCoastS, but still re-associates it later with its id', () => {
    const tracker = new MultiObjectTracker();
    tracker.update(t(0), [input(square(100, 100))]);
    tracker.update(t(1), [input(square(100, 100))]);
    const shownFrames = Math.round(OUTPUT_COAST_S * 10);
    for (let k = 2; k <= 1 + shownFrames; k++) expect(tracker.update(t(k), []).map((track) => track.state)).toEqual(['coasting']);
    expect(tracker.update(t(2 + shownFrames), [])).toHaveLength(0);
    expect(tracker.update(t(10), [input(square(100, 100))]).map((track) => [track.id, track.state])).toEqual([[1, 'confirmed']]);
  });

  it('dies on coast() too, and a detection after the death starts a new id (ids are never reused)', () => {
    const tracker = new MultiObjectTracker({ maxCoastS: 0.25 });
    tracker.update(t(0), [input(square(100, 100))]);
    tracker.update(t(1), [input(square(100, 100))]);
    expect(tracker.coast(t(3))).toHaveLength(1);
    expect(tracker.coast(t(4))).toHaveLength(0);
    tracker.update(t(5), [input(square(100, 100))]);
    const tracks = tracker.update(t(6), [input(square(100, 100))]);
    expect(tracks.map((track) => track.id)).toEqual([2]);
    expect(tracker.stats).toMatchObject({ tracksBorn: 2, tracksDied: 1 });
  });

  it('drops a tentative track at its first miss, but not on coast() between detector runs', () => {
    const tracker = new MultiObjectTracker({ outputTentative: true, confirmHits: 3 });
    tracker.update(t(0), [input(square(0, 0))]);
    expect(tracker.update(t(1), [])).toHaveLength(0);
    expect(tracker.stats.tentativeDropped).toBe(1);

    tracker.update(t(2), [input(square(0, 0))]);
    expect(tracker.coast(t(3)).map((track) => track.state)).toEqual(['tentative']);
    expect(tracker.update(t(4), [input(square(0, 0))]).map((track) => track.state)).toEqual(['tentative']);
    expect(tracker.update(t(5), [input(square(0, 0))]).map((track) => [track.id, track.state, track.ageFrames])).toEqual([[2, 'confirmed', 4]]);
  });

  it('gates by HUD class: a person box on a car track starts a new track; without gating it takes the car track', () => {
    const gated = new MultiObjectTracker({ outputTentative: true });
    gated.update(t(0), [input(square(0, 0), 0.9, 'car')]);
    gated.update(t(1), [input(square(0, 0), 0.9, 'car')]);
    const tracks = snapshot(gated.update(t(2), [input(square(0, 0), 0.9, 'person')]));
    expect(tracks).toEqual([expect.objectContaining({ id: 1, state: 'coasting' }), expect.objectContaining({ id: 2, state: 'tentative' })]);

    const ungated = new MultiObjectTracker({ classGating: 'none' });
    ungated.update(t(0), [input(square(0, 0), 0.9, 'car')]);
    ungated.update(t(1), [input(square(0, 0), 0.9, 'car')]);
    const [track] = ungated.update(t(2), [input(square(0, 0), 0.9, 'person')]);
    expect(track).toMatchObject({ id: 1, state: 'confirmed', className: 'person', hudClass: 'person' });
  });

  it('compares className for classes outside the HUD classes', () => {
    const tracker = new MultiObjectTracker({ outputTentative: true });
    tracker.update(t(0), [input(square(0, 0), 0.9, 'dog')]);
    tracker.update(t(1), [input(square(0, 0), 0.9, 'dog')]);
    expect(tracker.update(t(2), [input(square(0, 0), 0.9, 'cat')]).map((track) => track.id)).toEqual([1, 2]);
  });

  it('rejects bad detections with a counted reason and a message naming the field, and uses the good ones', () => {
    const rejections: TrackRejection[] = [];
    const tracker = new MultiObjectTracker({ outputTentative: true, onRejection: (r) => rejections.push(r) });
    const tracks = tracker.update(t(0), [
      input([NaN, 0, 10, 10]),
      input([10, 0, 0, 10]),
      input([0, 0, 0, 10]),
      input(square(0, 0), NaN),
      input(square(0, 0), 1.5),
      { detection: null } as unknown as TrackInput,
      input(square(500, 500)),
    ]);
    expect(tracks.map((track) => track.box)).toEqual([square(500, 500)]);
    expect(tracker.stats.detectionsRejected).toBe(6);
    expect(tracker.stats.rejections).toMatchObject({ 'box-not-finite': 2, 'box-inverted': 2, 'score-invalid': 2 });
    expect(rejections.map((r) => [r.reason, r.index])).toEqual([
      ['box-not-finite', 0],
      ['box-inverted', 1],
      ['box-inverted', 2],
      ['score-invalid', 3],
      ['score-invalid', 4],
      ['box-not-finite', 5],
    ]);
    expect(rejections[0]!.message).toBe('MultiObjectTracker.update: inputs[0].detection.box must be 4 finite numbers [x1, y1, x2, y2], got [NaN, 0, 10, 10]');
    expect(rejections[1]!.message).toBe('MultiObjectTracker.update: inputs[1].detection.box must have x2 > x1 and y2 > y1, got [10, 0, 0, 10]');
    expect(rejections[4]!.message).toBe('MultiObjectTracker.update: inputs[4].detection.score must be a number in [0, 1], got 1.5');
  });

  it('rejects a frame whose time does not increase, leaving the tracks as they were', () => {
    const rejections: TrackRejection[] = [];
    const tracker = new MultiObjectTracker({ onRejection: (r) => rejections.push(r) });
    tracker.update(t(0), [input(square(0, 0))]);
    const before = snapshot(tracker.update(t(1), [input(square(0, 0))]));
    expect(snapshot(tracker.update(t(1), [input(square(50, 0))]))).toEqual(before);
    expect(snapshot(tracker.update(t(0), [input(square(50, 0))]))).toEqual(before);
    expect(snapshot(tracker.coast(t(0)))).toEqual(before);
    expect(snapshot(tracker.update(3 as unknown as bigint, []))).toEqual(before);
    expect(snapshot(tracker.update(t(2), 'boxes' as unknown as TrackInput[]))).toEqual(before);
    expect(tracker.stats).toMatchObject({ framesAccepted: 2, framesRejected: 5 });
    expect(tracker.stats.rejections).toMatchObject({ 'time-not-increasing': 3, 'time-invalid': 1, 'inputs-invalid': 1 });
    expect(rejections[0]!.message).toBe(`MultiObjectTracker.update: tNs must be after the previous frame's ${t(1)}, got ${t(1)}`);
    expect(rejections[2]!.message).toBe(`MultiObjectTracker.coast: tNs must be after the previous frame's ${t(1)}, got ${t(0)}`);
    // The next good frame carries on.
    expect(tracker.update(t(2), [input(square(0, 0))])[0]).toMatchObject({ id: 1, hits: 3, ageFrames: 3 });
  });

  it('ignores a bad ground position or ego delta but still uses the box and the frame', () => {
    const tracker = new MultiObjectTracker({ outputTentative: true });
    const tracks = tracker.update(t(0), [
      input(square(0, 0), 0.9, 'car', { positionM: { x: NaN, y: 0 }, rangeSigmaM: 1, lateralSigmaM: 1 }),
      input(square(300, 0), 0.9, 'car', { positionM: { x: 10, y: 0 } }),
    ]);
    expect(tracks).toHaveLength(2);
    expect(tracks.every((track) => track.positionM === undefined)).toBe(true);
    expect(tracker.update(t(1), [input(square(0, 0)), input(square(300, 0))], { dxM: NaN, dyM: 0, dYawRad: 0 })).toHaveLength(2);
    expect(tracker.stats).toMatchObject({ measurementsRejected: 3, detectionsRejected: 0, framesAccepted: 2 });
    expect(tracker.stats.rejections).toMatchObject({ 'position-invalid': 2, 'ego-delta-invalid': 1 });
  });

  it('carries ground positions through ego motion: a parked car keeps ~zero velocity while the vehicle drives', () => {
    const tracker = new MultiObjectTracker();
    const egoDelta = { dxM: 1, dyM: 0, dYawRad: 0 };
    let last: Track | undefined;
    for (let k = 0; k < 15; k++) {
      const positionM = { x: 40 - k, y: 3 };
      [last] = tracker.update(t(k), [input(square(500, 400), 0.9, 'car', { positionM, rangeSigmaM: 2, lateralSigmaM: 0.3 })], k > 0 ? egoDelta : undefined);
    }
    expect(last!.positionM!.x).toBeCloseTo(26, 6);
    expect(last!.positionM!.y).toBeCloseTo(3, 6);
    expect(Math.hypot(last!.velocityMps!.x, last!.velocityMps!.y)).toBeLessThan(1e-6);
    expect(last!.positionSigmaM).toBeGreaterThan(0);
    expect(last!.positionSigmaM).toBeLessThan(2);
    // Coasting one frame: the position still moves with the ego motion.
    const [coasting] = tracker.update(t(15), [], egoDelta);
    expect(coasting!.positionM!.x).toBeCloseTo(25, 6);
  });

  it('returns the same array and track objects each call (owned by the tracker, valid until the next call)', () => {
    const tracker = new MultiObjectTracker();
    tracker.update(t(0), [input(square(0, 0))]);
    const a = tracker.update(t(1), [input(square(0, 0))]);
    const track = a[0];
    const b = tracker.update(t(2), [input(square(10, 0))]);
    expect(b).toBe(a);
    expect(b[0]).toBe(track);
  });

  it('rejects bad options with TypeError / RangeError naming the option', () => {
    const bad = (options: object) => thrownBy(() => new MultiObjectTracker(options));
    expect(bad({ highScore: 2 })).toMatchObject({ name: 'RangeError', message: "MultiObjectTracker: option 'highScore' must be in [0, 1], got 2" });
    expect(bad({ matchIouLow: 'x' })).toMatchObject({ name: 'TypeError', message: "MultiObjectTracker: option 'matchIouLow' must be a number, got x" });
    expect(bad({ lowScore: 0.6 })).toMatchObject({ name: 'RangeError', message: "MultiObjectTracker: option 'lowScore' must be <= highScore (0.5), got 0.6" });
    expect(bad({ newTrackScore: 0.4 })).toMatchObject({ message: "MultiObjectTracker: option 'newTrackScore' must be >= highScore (0.5), got 0.4" });
    expect(bad({ confirmHits: 0 })).toMatchObject({ message: "MultiObjectTracker: option 'confirmHits' must be an integer >= 1, got 0" });
    expect(bad({ maxCoastS: -1 })).toMatchObject({ message: "MultiObjectTracker: option 'maxCoastS' must be a finite number >= 0, got -1" });
    expect(bad({ outputCoastS: NaN })).toMatchObject({ message: "MultiObjectTracker: option 'outputCoastS' must be a number >= 0 (Infinity allowed), got NaN" });
    expect(bad({ classGating: 'label' })).toMatchObject({ message: "MultiObjectTracker: option 'classGating' must be 'hud-class' or 'none', got 'label'" });
  });
});

describe('trackerOptionsForDetector', () => {
  it("keeps ByteTrack's relations around the detector's own confident threshold", async () => {
    const { trackerOptionsForDetector, HIGH_SCORE, NEW_TRACK_SCORE, LOW_SCORE } = await import('../../perception/track/tracker.js');
    expect(trackerOptionsForDetector(0.3)).toEqual({ highScore: 0.3, newTrackScore: 0.3 + (NEW_TRACK_SCORE - HIGH_SCORE), lowScore: LOW_SCORE });
    expect(trackerOptionsForDetector(0.1).lowScore).toBe(0.05);
    expect(() => trackerOptionsForDetector(1)).toThrow("trackerOptionsForDetector: 'detectorScoreThreshold' must be in (0, 1), got 1");
  });
});
