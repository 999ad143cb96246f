import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { RecordingReader } from '../../pipeline/recording/reader.js';
import { TOPIC_CAMERA, TOPIC_FRAME_METRICS, TOPIC_FRAME_REPORT } from '../../pipeline/recording/topics.js';
import { arhud } from '../support/cli.js';
import { DATA_DIR, importedPandasetDrive, tempDir } from '../support/data.js';

describe('arhud CLI', () => {
  it.each([[[]], [['import']], [['import', 'pandaset']], [['import', 'video']], [['replay']], [['info']], [['demo']], [['models', 'build']], [['models', 'list']], [['models', 'info']], [['eval', 'detect']], [['eval', 'track']], [['render']], [['calibrate']], [['calibrate', 'camera']], [['calibrate', 'simulate']], [['calibrate', 'windshield']], [['broker']], [['display']], [['view']], [['run']], [['eval', 'registration']]])('%j --help prints usage and exits 0', async (args) => {
    const run = await arhud([...args, '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: arhud/);
    expect(run.stdout).toContain('Options:');
  });

  it('rejects bad usage with exit code 2 and says what is wrong', async () => {
    const speed = await arhud(['replay', 'x.mcap', '--speed', '50']);
    expect(speed.code).toBe(2);
    expect(speed.stderr).toContain('--speed must be a number in [0.1, 20], got \'50\'');
    const missing = await arhud(['import', 'pandaset', 'somewhere']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '-o, --output <file>' not specified");
  });

  it('prints one error line naming the file for a missing recording', async () => {
    const run = await arhud(['replay', '/nonexistent/drive.mcap', '--afap', '--detect', 'none']);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^arhud replay: \/nonexistent\/drive\.mcap: cannot open \(ENOENT/)]);
  });

  it('replay --publish renders the drive and publishes every HUD frame, scene and camera preview through an embedded broker', async () => {
    const out = path.join(await tempDir(), 'published.mcap');
    const run = await arhud(['replay', await importedPandasetDrive(), '-o', out, '--afap', '--detect', 'none', '--publish', '--end', '1.95', '-q']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/embedded MQTT broker at mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(run.stdout).toMatch(/^link: 20 HUD frames published \(0 dropped\), 20 scenes, 20 camera previews to mqtt:/m);
  });

  it('run plays a video file as a live camera, with vehicle signals from JSON lines, through the graph to an embedded broker, records, and stops at --duration', async () => {
    const dir = await tempDir();
    const signals = path.join(dir, 'signals.jsonl');
    const nowS = Math.floor(Date.now() / 1000);
    await writeFile(signals, `${JSON.stringify({ timestamp: { sec: nowS, nsec: 0 }, speedMps: 25, yawRateRps: 0 })}\nnot json\n`);
    const out = path.join(dir, 'run.mcap');
    const video = path.join(DATA_DIR, 'udacity-lanelines', 'test_videos', 'solidWhiteRight.mp4');
    const run = await arhud(['run', video, '--mounting', 'udacity-solidwhiteright', '--signals', signals, '--detect', 'none', '--duration', '2', '-o', out, '--data', DATA_DIR]);
    expect(run.code, run.stderr).toBe(0);
    const frames = Number(/^ran (\d+) frames/m.exec(run.stdout)?.[1]);
    expect(frames).toBeGreaterThan(5);
    expect(run.stdout).toMatch(new RegExp(`^link: ${frames} HUD frames published`, 'm'));
    // One good state, one line skipped (named in the log); the lone state goes stale after 200 ms.
    expect(run.stdout).toMatch(/^signals: 1 states accepted, 1 skipped/m);
    expect(run.stderr).toMatch(/signals\.jsonl': line 2: arhud\.VehicleState: payload is not JSON/);
    const reader = await RecordingReader.open(out);
    expect(reader.topic(TOPIC_FRAME_METRICS)?.messageCount).toBe(frames);
    await reader.close();
  });

  it('run refuses a frame size it cannot use, naming the option', async () => {
    const run = await arhud(['run', '/dev/video0', '--size', '961x540']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--size takes WIDTHxHEIGHT in px, even, 2..8192 (e.g. 960x540), got '961x540'");
  });

  it('view wants exactly one source', async () => {
    const run = await arhud(['view', '--live', 'mqtt://127.0.0.1:1', '--replay', 'x.mcap']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('arhud view: give exactly one of --live <url> and --replay <file>');
  });

  it('info lists topics of an imported drive', async () => {
    const run = await arhud(['info', await importedPandasetDrive()]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/\/camera\/front\s+60\s+foxglove\.CompressedImage/);
    expect(run.stdout).toMatch(/\/ground_truth\/objects\s+60\s+arhud\.GroundTruthObjects/);
  });

  it('SIGINT during a paced replay leaves a valid, finalized output recording and exits 130', async () => {
    const drive = await importedPandasetDrive();
    const output = path.join(await tempDir(), 'interrupted.mcap');
    const run = await arhud(['replay', drive, '--speed', '1', '--detect', 'none', '-o', output], {
      onSpawn: (child) => {
        // Interrupt once the replay is under way (the output file exists and frames are flowing).
        void vi
          .waitFor(() => expect(existsSync(output)).toBe(true), { timeout: 20_000, interval: 50 })
          .then(() => new Promise((resolve) => setTimeout(resolve, 1500)))
          .then(() => child.kill('SIGINT'));
      },
    });
    expect(run.code).toBe(130);
    expect(run.stdout).toContain('interrupted: the output holds everything replayed so far');
    const reader = await RecordingReader.open(output, { strict: true });
    expect(reader.indexed).toBe(true);
    const frames = reader.topic(TOPIC_FRAME_REPORT)?.messageCount ?? 0;
    expect(frames).toBeGreaterThan(0);
    expect(frames).toBeLessThan(60);
    expect(reader.topic(TOPIC_CAMERA)?.messageCount).toBe(frames);
    await reader.close();
  });
});
