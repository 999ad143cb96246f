/**
 * HudLink against a real mosquitto: the last-will when the pipeline process dies, and mutual TLS (CA,
 * client certificate, username/password), also with the example hud/mosquitto/mosquitto.conf.
 * System suite: needs Debian's mosquitto and openssl (`.ci/run` installs them); without them these
 * tests fail.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HudLink } from '../../hud/link.js';
import { PROJECT_ROOT, tempDir } from '../support/data.js';
import { LogLines, Mosquitto, MosquittoTestBroker, defineLastWillCase, freePort, freshVehicleId, passwordOf, testWarning, waitFor } from '../hud/support.js';
import { MOSQUITTO_BINARIES, OPENSSL, OPENSSL_BINARY, requireBinaries } from './binaries.js';

requireBinaries(...MOSQUITTO_BINARIES, OPENSSL_BINARY);

describe('last-will on mosquitto', () => {
  defineLastWillCase(() => MosquittoTestBroker.start());
});

describe('TLS to mosquitto (CA, client certificate, username/password)', () => {
  let mosquitto: Mosquitto;
  let dir: string;
  const file = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    dir = await tempDir('arhud-tls-');
    const openssl = (...args: string[]) => promisify(execFile)(OPENSSL, args, { cwd: dir });
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=arhud test CA');
    await writeFile(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const [name, cn] of [['broker', '127.0.0.1'], ['pipeline', 'pipeline']] as const) {
      await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
      await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', ...(name === 'broker' ? ['-extfile', 'san.ext'] : []));
    }
    // A second CA that signed nothing: trusting it must fail the handshake.
    await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=other CA');
    mosquitto = await Mosquitto.start({
      dir,
      scheme: 'mqtts',
      listenerConf: [`cafile ${file('ca.crt')}`, `certfile ${file('broker.crt')}`, `keyfile ${file('broker.key')}`, 'require_certificate true', 'tls_version tlsv1.2'],
    });
  });
  afterAll(async () => {
    await mosquitto?.dispose();
  });

  it('connects with the CA, a client certificate and a password', async () => {
    const log = new LogLines();
    const link = await HudLink.create({
      url: mosquitto.url,
      vehicleId: freshVehicleId(),
      username: 'pipeline',
      password: passwordOf('pipeline'),
      tls: { caFile: file('ca.crt'), certFile: file('pipeline.crt'), keyFile: file('pipeline.key') },
      log: log.log,
    });
    expect(link.stats).toMatchObject({ connected: true, protocolVersion: 5 });
    link.publishWarning(testWarning('tls-1', 1n));
    await waitFor('warning acknowledged over TLS', () => link.stats.warningsAcked === 1);
    await link.dispose();
  });

  it('does not connect to a broker whose certificate the CA did not sign, and keeps retrying', async () => {
    const log = new LogLines();
    const link = await HudLink.create({
      url: mosquitto.url,
      vehicleId: freshVehicleId(),
      username: 'pipeline',
      password: passwordOf('pipeline'),
      tls: { caFile: file('other.crt'), certFile: file('pipeline.crt'), keyFile: file('pipeline.key') },
      log: log.log,
    });
    expect(link.stats.connected).toBe(false);
    expect(log.matching(/certificate/i).length).toBeGreaterThanOrEqual(1);
    await link.dispose();
  });

  it('the example hud/mosquitto/mosquitto.conf runs and serves the link over mutual TLS', async () => {
    const example = await readFile(path.join(PROJECT_ROOT, 'hud/mosquitto/mosquitto.conf'), 'utf8');
    const plainPort = await freePort();
    const exampleBroker = await Mosquitto.start({
      dir: await tempDir('arhud-example-conf-'),
      scheme: 'mqtts',
      conf: (port, exampleDir) =>
        example
          .replaceAll('/etc/mosquitto/certs/', `${dir}/`)
          .replaceAll('/etc/mosquitto/arhud.passwd', path.join(exampleDir, 'passwd'))
          .replaceAll('/etc/mosquitto/arhud.acl', path.join(PROJECT_ROOT, 'hud/mosquitto/acl'))
          .replaceAll('/var/lib/mosquitto/', `${exampleDir}/`)
          .replace('listener 1883 ', `listener ${plainPort} `)
          .replace('listener 8883', `listener ${port}`) + '\nuser root\n',
    });
    try {
      const log = new LogLines();
      const link = await HudLink.create({
        url: exampleBroker.url,
        vehicleId: freshVehicleId(),
        username: 'pipeline',
        password: passwordOf('pipeline'),
        tls: { caFile: file('ca.crt'), certFile: file('pipeline.crt'), keyFile: file('pipeline.key') },
        log: log.log,
      });
      expect(link.stats.connected).toBe(true);
      link.publishWarning(testWarning('example-1', 1n));
      await waitFor('warning acknowledged', () => link.stats.warningsAcked === 1);
      await link.dispose();
    } finally {
      await exampleBroker.dispose();
    }
  });
});
