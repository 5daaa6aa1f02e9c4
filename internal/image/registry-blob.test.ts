// A blob GET through RegistrySession.getBlob (the http1-get transport) against loopback servers
// that act as a registry with Bearer auth redirecting blobs to another origin, as Docker Hub does.
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { defaultConfig } from '../config/config';
import { isBerthError, Status } from '../errors';
import { silentLogger } from '../log';
import { parseReference } from './reference';
import { DEDICATED_CONNECTION_BYTES, RegistryClient } from './registry';

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; host: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function drain(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

describe('RegistrySession.getBlob', () => {
  const blob = randomBytes(DEDICATED_CONNECTION_BYTES + 99);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const seenByStorage: http.IncomingHttpHeaders[] = [];
  let registry: { server: http.Server; host: string };
  let storage: { server: http.Server; host: string };
  let client: RegistryClient;

  beforeAll(async () => {
    storage = await listen((req, res) => {
      seenByStorage.push(req.headers);
      if (req.url !== '/bucket/b?sig=1') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-length': blob.length }).end(blob);
    });
    registry = await listen((req, res) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"tok-1"}');
      } else if (req.headers.authorization !== 'Bearer tok-1') {
        res
          .writeHead(401, {
            'www-authenticate': `Bearer realm="http://${registry.host}/token",service="lab",scope="repository:lib/app:pull"`,
          })
          .end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      } else if (req.url === `/v2/lib/app/blobs/${digest}`) {
        res.writeHead(307, { location: `http://${storage.host}/bucket/b?sig=1` }).end();
      } else {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
      }
    });
    const config = defaultConfig();
    config.registry.insecure = ['127.0.0.1'];
    client = new RegistryClient({ config, log: silentLogger() });
  });

  afterAll(async () => {
    client.close();
    for (const s of [registry.server, storage.server]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  const session = () =>
    client.session(parseReference(`${registry.host}/lib/app:v1`), undefined, new AbortController().signal);

  it.each([
    ['a big blob on a connection of its own (http1-get)', blob.length, 'close'],
    ['a small one on a kept-alive connection (node:http)', 1000, 'keep-alive'],
    ['one of unknown size on a kept-alive connection', undefined, 'keep-alive'],
  ])(
    '%s: answers the Bearer challenge, follows the redirect without the token',
    async (_what, declared, conn) => {
      const { body, size } = await session().getBlob(digest, declared);
      expect(size).toBe(blob.length);
      expect((await drain(body)).equals(blob)).toBe(true);
      const seen = seenByStorage.at(-1);
      expect(seen?.authorization).toBeUndefined();
      expect(seen?.['user-agent']).toMatch(/^berth\//);
      expect(seen?.connection).toBe(conn);
    },
  );

  it('maps a missing blob to NOT_FOUND and an unreachable registry to UNAVAILABLE', async () => {
    const missing = `sha256:${'0'.repeat(64)}`;
    const err = await session()
      .getBlob(missing)
      .catch((e: unknown) => e);
    expect(isBerthError(err, Status.NOT_FOUND)).toBe(true);

    const gone = await listen((_req, res) => res.end());
    const host = gone.host;
    await new Promise<void>((r) => gone.server.close(() => r()));
    const down = client.session(
      parseReference(`${host}/lib/app:v1`),
      undefined,
      new AbortController().signal,
    );
    const err2 = await down.getBlob(digest, blob.length).catch((e: unknown) => e);
    expect(isBerthError(err2, Status.UNAVAILABLE)).toBe(true);
    expect((err2 as Error).message).toContain('ECONNREFUSED');
  });
});
