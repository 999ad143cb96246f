/**
 * `arhud broker|display|view`: the embedded MQTT broker on its own, the reference display
 * controller, and the web viewer (live from a broker, or a replayed recording).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { EmbeddedBroker } from '../hud/broker.js';
import { DEFAULT_DISPLAY_VIEWER_PORT, DEFAULT_MAX_FRAME_AGE_MS, MAX_FRAME_AGE_LIMIT_MS, runDisplay, type DisplayTlsOptions } from '../hud/display-controller.js';
import { DEFAULT_VIEWER_PORT, runViewer } from '../hud/viewer/server.js';

/** Vehicle id used when none is given (the demo's). */
export const DEFAULT_VEHICLE_ID = 'demo';
/** The broker `arhud broker` listens on by default (MQTT's registered port). */
export const DEFAULT_BROKER_PORT = 1883;

function parseInteger(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) throw new InvalidArgumentError(`${name} must be a whole number in [${min}, ${max}], got '${text}'`);
    return value;
  };
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Broker connection options shared by every command that talks MQTT. */
export interface BrokerCliOptions {
  url: string;
  vehicle: string;
  username?: string;
  password?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

export function addBrokerOptions(command: Command, urlDefault?: string): Command {
  const url = new Option('--url <url>', 'broker URL (mqtt://host:port, mqtts:// for TLS)');
  return command
    .addOption(urlDefault === undefined ? url.makeOptionMandatory() : url.default(urlDefault))
    .option('--vehicle <id>', 'vehicle id in the topics arhud/v1/{id}/...', DEFAULT_VEHICLE_ID)
    .option('--username <name>', 'broker user name')
    .addOption(new Option('--password <secret>', 'broker password (or ARHUD_MQTT_PASSWORD)').env('ARHUD_MQTT_PASSWORD'))
    .option('--ca <file>', 'CA certificate (PEM) to verify the broker')
    .option('--cert <file>', 'client certificate (PEM)')
    .option('--key <file>', 'client private key (PEM)');
}

export function tlsOf(opts: BrokerCliOptions): DisplayTlsOptions | undefined {
  if (!opts.ca && !opts.cert && !opts.key) return undefined;
  return { caFile: opts.ca, certFile: opts.cert, keyFile: opts.key };
}

/** Resolves when Ctrl-C (SIGINT) or SIGTERM arrives. */
function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

export function addHudCommands(program: Command): void {
  program
    .command('broker')
    .description('run the embedded MQTT broker (aedes) until Ctrl-C, for display and view in other terminals')
    .addOption(new Option('--port <n>', 'TCP port (0 = any free port)').default(DEFAULT_BROKER_PORT).argParser(parseInteger('--port', 0, 65535)))
    .option('--host <address>', 'interface to listen on', '127.0.0.1')
    .action(async (opts: { port: number; host: string }) => {
      const broker = await EmbeddedBroker.start({ port: opts.port, host: opts.host });
      process.stdout.write(`broker: ${broker.url} (Ctrl-C to stop)\n`);
      await untilInterrupted();
      await broker.stop();
    });

  addBrokerOptions(
    program
      .command('display')
      .description('reference display controller: validates and shows HUD frames, acknowledges them; to a framebuffer, else the web viewer'),
  )
    .addOption(new Option('--max-age-ms <ms>', 'drop frames older than this, and blank when none is fresher').default(DEFAULT_MAX_FRAME_AGE_MS).argParser(parseInteger('--max-age-ms', 1, MAX_FRAME_AGE_LIMIT_MS)))
    .option('--framebuffer <device>', 'Linux framebuffer device (e.g. /dev/fb0); without it the viewer is served')
    .addOption(new Option('--viewer-port <n>', 'viewer port without a framebuffer (0 = any free port)').default(DEFAULT_DISPLAY_VIEWER_PORT).argParser(parseInteger('--viewer-port', 0, 65535)))
    .action(async (opts: BrokerCliOptions & { maxAgeMs: number; framebuffer?: string; viewerPort: number }) => {
      const handle = await runDisplay({
        url: opts.url,
        vehicleId: opts.vehicle,
        maxFrameAgeMs: opts.maxAgeMs,
        framebuffer: opts.framebuffer,
        viewerPort: opts.viewerPort,
        username: opts.username,
        password: opts.password,
        tls: tlsOf(opts),
        log,
      });
      await untilInterrupted();
      const stats = handle.controller.stats;
      await handle.stop();
      process.stdout.write(`display: ${stats.framesShown} frames shown, ${stats.framesDroppedStale} stale dropped, ${stats.sequenceGaps} gaps (${stats.framesMissing} frames missing)\n`);
    });

  program
    .command('view')
    .description('web viewer on localhost: the HUD over the camera image as the driver sees it, fps and latency charts')
    .option('--live <url>', 'broker URL to watch (live)')
    .option('--replay <file>', 'recording written by arhud replay --hud (replay)')
    .option('--loop', 'with --replay: play forever')
    .option('--vehicle <id>', 'vehicle id (with --live)', DEFAULT_VEHICLE_ID)
    .addOption(new Option('--port <n>', 'HTTP port (0 = any free port)').default(DEFAULT_VIEWER_PORT).argParser(parseInteger('--port', 0, 65535)))
    .option('--optics <file>', 'HUD optics config (JSON)')
    .option('--warp <file>', 'far-plane warp map: show the panel through the (simulated) windshield')
    .option('--warp-near <file>', 'near-plane warp map')
    .action(async (opts: { live?: string; replay?: string; loop?: boolean; vehicle: string; port: number; optics?: string; warp?: string; warpNear?: string }) => {
      if ((opts.live === undefined) === (opts.replay === undefined)) {
        process.stderr.write('arhud view: give exactly one of --live <url> and --replay <file>\n');
        process.exitCode = 2;
        return;
      }
      const server = await runViewer({
        port: opts.port,
        live: opts.live ? { url: opts.live, vehicleId: opts.vehicle } : undefined,
        replay: opts.replay ? { file: opts.replay, loop: opts.loop } : undefined,
        optics: opts.optics,
        warp: opts.warp,
        warpNear: opts.warpNear,
        log,
      });
      process.stdout.write(`viewer: open ${server.url} (Ctrl-C to stop)\n`);
      await untilInterrupted();
      await server.stop();
    });
}
