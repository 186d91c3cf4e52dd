import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '#shared/db';

/**
 * TLS to PostgreSQL as deployed (README: TLS to PostgreSQL): a URL with `sslmode=verify-full` makes
 * pg check the server's certificate against the CAs Node trusts, which NODE_EXTRA_CA_CERTS extends
 * (on Lambda, /var/runtime/ca-cert.pem: Amazon's CAs, RDS's among them). Here a CA made for the test
 * stands for RDS's, and a server that answers PostgreSQL's SSLRequest and then the TLS handshake
 * stands for the database; the handshakes it completes are counted.
 */
const work = mkdtempSync(join(tmpdir(), 'hubfolio-tls-'));
const file = (name: string) => join(work, name);
let server: Server;
let port: number;
let handshakes = 0;

beforeAll(async () => {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: work, stdio: 'ignore' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
  );
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=localhost',
  );
  writeFileSync(file('ext'), 'subjectAltName=DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '1',
    '-extfile',
    'ext',
  );
  const key = readFileSync(file('server.key'));
  const cert = readFileSync(file('server.pem'));
  server = createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      // The SSLRequest: say yes, then speak TLS; after the handshake, hang up.
      socket.write('S');
      const tls = new TLSSocket(socket, { isServer: true, key, cert });
      tls.on('error', () => {});
      tls.on('secure', () => {
        handshakes += 1;
        tls.destroy();
      });
    });
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  port = (server.address() as { port: number }).port;
}, 60_000);
afterAll(() => {
  server.close();
  rmSync(work, { recursive: true, force: true });
});

/** Connects as the functions do (createPool), in a Node process of its own with these extra CAs; answers its error. */
async function connect(host: string, extraCaCerts: string): Promise<string> {
  const db = resolve(import.meta.dirname, '../../shared/db.ts');
  const script = `const { createPool } = await import(${JSON.stringify(db)});
    const pool = createPool(${JSON.stringify(`postgres://hubfolio@${host}:${port}/hubfolio?sslmode=verify-full`)});
    await pool.query('SELECT 1').then(() => console.log('connected'), (error) => console.log(error.code ?? error.message));
    await pool.end();`;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '--eval', script],
    { env: { ...process.env, NODE_EXTRA_CA_CERTS: extraCaCerts } },
  );
  return stdout.trim();
}

describe('TLS to PostgreSQL with sslmode=verify-full', () => {
  it('refuses a server whose certificate no trusted CA signed', async () => {
    const pool = createPool(`postgres://hubfolio@localhost:${port}/hubfolio?sslmode=verify-full`);
    const error = await pool.query('SELECT 1').then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    await pool.end();
    expect(error?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(handshakes).toBe(0);
  });

  it('completes the handshake once the CA is trusted through NODE_EXTRA_CA_CERTS', async () => {
    const outcome = await connect('localhost', file('ca.pem'));
    // The handshake passed; the stand-in server then hangs up instead of speaking PostgreSQL.
    expect(outcome).not.toMatch(/CERT|SIGNATURE/);
    expect(handshakes).toBe(1);
  });

  it('still refuses a certificate for another host name', async () => {
    expect(await connect('127.0.0.1', file('ca.pem'))).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(handshakes).toBe(1);
  });
});
