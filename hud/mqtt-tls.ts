import { readFile } from 'node:fs/promises';
import type { IClientOptions } from 'mqtt';

/** TLS settings of an MQTT client: PEM contents, or files to read them from. */
export interface MqttTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Verify the broker's certificate. Default true. */
  rejectUnauthorized?: boolean;
}

export type MqttTlsClientOptions = Pick<IClientOptions, 'ca' | 'cert' | 'key' | 'rejectUnauthorized'>;

/**
 * The mqtt client's TLS options: reads the files (errors name `caller`, the option and the file) and
 * merges them with given contents. A client certificate needs its key and the other way round.
 */
export async function mqttTlsClientOptions(caller: string, tls: MqttTlsOptions | undefined): Promise<MqttTlsClientOptions> {
  if (!tls) return {};
  const read = async (name: string, file: string | undefined): Promise<Buffer | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file);
    } catch (error) {
      throw new Error(`${caller}: cannot read 'tls.${name}' ${file}: ${(error as Error).message}`, { cause: error });
    }
  };
  const ca = tls.ca ?? (await read('caFile', tls.caFile));
  const cert = tls.cert ?? (await read('certFile', tls.certFile));
  const key = tls.key ?? (await read('keyFile', tls.keyFile));
  if ((cert === undefined) !== (key === undefined)) throw new TypeError(`${caller}: 'tls.certFile' and 'tls.keyFile' must be given together`);
  const out: MqttTlsClientOptions = { rejectUnauthorized: tls.rejectUnauthorized ?? true };
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  return out;
}
