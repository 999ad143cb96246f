/**
 * The embedded MQTT broker (aedes over node:net), so the HUD link works with no broker service
 * installed. Aedes speaks MQTT 3.1.1 only: HudLink falls back from v5 to 3.1.1 on its own (v5
 * properties such as the content type are then left out). For an external broker (mosquitto), see
 * hud/mosquitto/.
 */
import net from 'node:net';
import { Aedes } from 'aedes';

export const EMBEDDED_BROKER_DEFAULT_HOST = '127.0.0.1';

declare const persistenceBrand: unique symbol;
/**
 * Sessions, queued QoS 1 messages and retained messages of an embedded broker (in memory). Pass it
 * to the next `start` to restart "with persistence", like mosquitto with `persistence true`.
 */
export type EmbeddedBrokerPersistence = { readonly [persistenceBrand]: true };

export interface EmbeddedBrokerOptions {
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** State kept from a previous broker (`broker.persistence`). Default: a fresh, empty state. */
  persistence?: EmbeddedBrokerPersistence;
}

export class EmbeddedBroker {
  /** `mqtt://host:port`. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  /** This broker's sessions and retained messages, to hand to a restarted broker. */
  readonly persistence: EmbeddedBrokerPersistence;
  readonly #aedes: Aedes;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #stopped: Promise<void> | undefined;

  private constructor(aedes: Aedes, server: net.Server, host: string, port: number, sockets: Set<net.Socket>) {
    this.#aedes = aedes;
    this.#server = server;
    this.#sockets = sockets;
    this.host = host;
    this.port = port;
    this.url = `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.persistence = (aedes as unknown as { persistence: EmbeddedBrokerPersistence }).persistence;
  }

  /** Starts a broker; rejects (naming the port) when it cannot listen, e.g. the port is taken. */
  static async start(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
    const port = options.port ?? 0;
    const host = options.host ?? EMBEDDED_BROKER_DEFAULT_HOST;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`EmbeddedBroker.start: 'port' must be an integer in 0..65535, got ${port}`);
    const aedes = await Aedes.createBroker(options.persistence ? { persistence: options.persistence } : {});
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      // A client that vanishes mid-packet must not take the process down.
      socket.on('error', () => socket.destroy());
      aedes.handle(socket);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw new Error(`EmbeddedBroker.start: cannot listen on ${host}:${port}: ${(error as Error).message}`, { cause: error });
    }
    const address = server.address() as net.AddressInfo;
    return new EmbeddedBroker(aedes, server, host, address.port, sockets);
  }

  /** Number of connected clients. */
  get connectedClients(): number {
    return this.#aedes.connectedClients;
  }

  /** Stops listening and drops every client at once (they see the connection close). Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const socket of this.#sockets) socket.destroy();
      this.#sockets.clear();
      await new Promise<void>((resolve) => this.#aedes.close(() => resolve()));
      await closed;
    })();
    return this.#stopped;
  }
}
