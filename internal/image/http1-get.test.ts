import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import type { Readable } from 'node:stream';
import {
  BODY_CHUNK,
  ChunkedDecoder,
  HttpProtocolError,
  MAX_HEAD,
  bodyFraming,
  http1Get,
  parseResponseHead,
  requestHead,
} from './http1-get';

const never = (): AbortSignal => new AbortController().signal;

/** The body's chunks as its 'data' events give them (async iteration would join buffered ones). */
function chunksOf(body: Readable): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    if (body.errored) {
      reject(body.errored); // it failed before anyone listened
      return;
    }
    const parts: Buffer[] = [];
    body.on('data', (c: Buffer) => parts.push(c));
    body.on('end', () => resolve(parts));
    body.on('error', reject);
  });
}

async function readAll(body: Readable): Promise<{ data: Buffer; chunks: number[] }> {
  const parts = await chunksOf(body);
  return { data: Buffer.concat(parts), chunks: parts.map((p) => p.length) };
}

/** A TCP server that answers every connection with `respond` (raw bytes, as a server would). */
async function rawServer(
  respond: (sock: net.Socket, request: string) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    let req = '';
    sock.on('data', (d) => {
      req += d.toString('latin1');
      if (req.includes('\r\n\r\n')) respond(sock, req);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

describe('parseResponseHead', () => {
  it('reads the status and lowercases names; repeats join, single-valued ones keep the first', () => {
    const h = parseResponseHead(
      'HTTP/1.1 307 Temporary Redirect\r\nLocation: /a\r\nlocation: /b\r\nVary: A\r\nVary: B\r\nSet-Cookie: x=1\r\nSet-Cookie: y=2\r\nContent-Length:  12 ',
    );
    expect(h.status).toBe(307);
    expect(h.headers.location).toBe('/a');
    expect(h.headers.vary).toBe('A, B');
    expect(h.headers['set-cookie']).toEqual(['x=1', 'y=2']);
    expect(h.headers['content-length']).toBe('12');
    expect(parseResponseHead('HTTP/1.0 200').status).toBe(200);
  });

  it('refuses what is not an HTTP/1.x response head', () => {
    expect(() => parseResponseHead('HTTP/2 200 OK')).toThrow(HttpProtocolError);
    expect(() => parseResponseHead('SSH-2.0-OpenSSH')).toThrow(HttpProtocolError);
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\nno colon here')).toThrow(HttpProtocolError);
    expect(() => parseResponseHead('HTTP/1.1 200 OK\r\n folded: value')).toThrow(HttpProtocolError);
  });
});

describe('bodyFraming', () => {
  const head = (headers: Record<string, string>, status = 200) => ({ status, headers });
  it('chunked wins over Content-Length; otherwise the length, else the connection end', () => {
    expect(bodyFraming(head({ 'transfer-encoding': 'gzip, chunked', 'content-length': '5' }))).toEqual({
      kind: 'chunked',
    });
    expect(bodyFraming(head({ 'transfer-encoding': 'gzip' }))).toEqual({ kind: 'close' });
    expect(bodyFraming(head({ 'content-length': '42' }))).toEqual({ kind: 'length', bytes: 42 });
    expect(bodyFraming(head({}))).toEqual({ kind: 'close' });
    expect(bodyFraming(head({ 'content-length': '42' }, 304))).toEqual({ kind: 'length', bytes: 0 });
    expect(() => bodyFraming(head({ 'content-length': '4, 5' }))).toThrow(HttpProtocolError);
    expect(() => bodyFraming(head({ 'content-length': '-1' }))).toThrow(HttpProtocolError);
  });
});

describe('ChunkedDecoder', () => {
  const data = randomBytes(3000);
  const encoded = Buffer.concat([
    Buffer.from('a;ext=1\r\n'),
    data.subarray(0, 10),
    Buffer.from('\r\nB8C\r\n'),
    data.subarray(10, 10 + 0xb8c),
    Buffer.from(`\r\n${(3000 - 10 - 0xb8c).toString(16)}\r\n`),
    data.subarray(10 + 0xb8c),
    Buffer.from('\r\n0\r\nX-Trailer: 1\r\n\r\n'),
  ]);

  it.each([1, 2, 7, 64, encoded.length])(
    'decodes a body fed in pieces of %i bytes, trailers included',
    (step) => {
      const dec = new ChunkedDecoder();
      const out: Buffer[] = [];
      const tail = Buffer.from('NEXT');
      const input = Buffer.concat([encoded, tail]);
      let used = 0;
      for (let i = 0; i < input.length && !dec.done; i += step) {
        const end = Math.min(i + step, input.length);
        used += dec.push(input, i, end, (b, s, e) => out.push(Buffer.from(b.subarray(s, e))));
      }
      expect(dec.done).toBe(true);
      expect(Buffer.concat(out).equals(data)).toBe(true);
      expect(used).toBe(encoded.length); // stops at the end of the body
    },
  );

  it('refuses a bad size line and data longer than its size', () => {
    const push = (s: string) => new ChunkedDecoder().push(Buffer.from(s), 0, s.length, () => undefined);
    expect(() => push('zz\r\n')).toThrow(HttpProtocolError);
    expect(() => push('2\r\nabc\r\n')).toThrow(HttpProtocolError);
    expect(() => push('1'.repeat(5000))).toThrow(HttpProtocolError);
  });
});

describe('requestHead', () => {
  it('writes a GET with Host and the headers, and refuses a header that breaks its line', () => {
    const h = requestHead(new URL('http://reg.example:5000/v2/a/blobs/sha256:1?x=1'), {
      Authorization: 'Bearer t',
    });
    expect(h).toBe(
      'GET /v2/a/blobs/sha256:1?x=1 HTTP/1.1\r\nHost: reg.example:5000\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n',
    );
    expect(() => requestHead(new URL('http://a/'), { Authorization: 'x\r\nEvil: 1' })).toThrow(TypeError);
    expect(() => requestHead(new URL('http://a/'), { 'Bad Name': 'x' })).toThrow(TypeError);
  });
});

describe('http1Get over loopback', () => {
  const data = randomBytes(3 * BODY_CHUNK + 12345);
  let server: http.Server;
  let base: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/length') {
        res.writeHead(200, { 'content-length': data.length, 'x-seen-auth': req.headers.authorization ?? '' });
        res.end(data);
      } else if (req.url === '/chunked') {
        res.writeHead(200);
        let i = 0;
        const more = (): void => {
          if (i >= data.length) {
            res.end();
            return;
          }
          res.write(data.subarray(i, (i += 100_003)), () => setImmediate(more));
        };
        more();
      } else if (req.url === '/empty') {
        res.writeHead(404, { 'content-length': 0 });
        res.end();
      } else {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="x"', 'content-type': 'application/json' });
        res.end('{"errors":[]}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('streams a Content-Length body in chunks of at most BODY_CHUNK, sending the headers', async () => {
    const res = await http1Get(new URL(`${base}/length`), {
      headers: { Authorization: 'Bearer tok' },
      signal: never(),
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-seen-auth']).toBe('Bearer tok');
    const got = await readAll(res.body);
    expect(got.data.equals(data)).toBe(true);
    expect(Math.max(...got.chunks)).toBeLessThanOrEqual(BODY_CHUNK);
    expect(got.chunks.filter((n) => n === BODY_CHUNK).length).toBe(3);
  });

  it('decodes a chunked body; answers with no body and error statuses come through', async () => {
    const res = await http1Get(new URL(`${base}/chunked`), { headers: {}, signal: never() });
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect((await readAll(res.body)).data.equals(data)).toBe(true);
    const empty = await http1Get(new URL(`${base}/empty`), { headers: {}, signal: never() });
    expect(empty.status).toBe(404);
    expect((await readAll(empty.body)).data.length).toBe(0);
    const denied = await http1Get(new URL(`${base}/other`), { headers: {}, signal: never() });
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Bearer realm="x"');
    expect((await readAll(denied.body)).data.toString()).toBe('{"errors":[]}');
  });

  it('takes chunk buffers from the given source', async () => {
    const given: Buffer[] = [];
    const chunk = (): Buffer => {
      const b = Buffer.alloc(BODY_CHUNK);
      given.push(b);
      return b;
    };
    const res = await http1Get(new URL(`${base}/length`), { headers: {}, signal: never(), chunk });
    const parts = await chunksOf(res.body);
    expect(given.length).toBe(4);
    expect(parts.every((p) => given.some((g) => g.buffer === p.buffer))).toBe(true);
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it('keeps the data whole when its reader is slow (the socket pauses, nothing is dropped)', async () => {
    const res = await http1Get(new URL(`${base}/length`), { headers: {}, signal: never() });
    const parts: Buffer[] = [];
    for await (const c of res.body as AsyncIterable<Buffer>) {
      parts.push(Buffer.from(c));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
  });

  it('refuses a connection it cannot make, and aborts with the signal', async () => {
    const closed = await rawServer((sock) => sock.destroy());
    const port = Number(new URL(closed.url).port);
    await closed.close();
    await expect(
      http1Get(new URL(`http://127.0.0.1:${port}/`), { headers: {}, signal: never() }),
    ).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    const ac = new AbortController();
    const res = await http1Get(new URL(`${base}/length`), { headers: {}, signal: ac.signal });
    const reason = new Error('stop now');
    ac.abort(reason);
    await expect(readAll(res.body)).rejects.toBe(reason);
    const pre = new AbortController();
    pre.abort(reason);
    await expect(http1Get(new URL(`${base}/length`), { headers: {}, signal: pre.signal })).rejects.toBe(
      reason,
    );
  });
});

describe('http1Get against raw answers', () => {
  /** GETs / from a raw server that answers with `respond`, and hands the response to `check`. */
  async function against(
    respond: (sock: net.Socket) => void,
    check: (res: Awaited<ReturnType<typeof http1Get>>) => Promise<void>,
  ): Promise<void> {
    const srv = await rawServer(respond);
    try {
      await check(await http1Get(new URL(`${srv.url}/`), { headers: {}, signal: never() }));
    } finally {
      await srv.close();
    }
  }
  const truncated = (sock: net.Socket): void => {
    sock.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort');
  };

  it('skips an interim 100 response and reads a body framed by the connection end', () =>
    against(
      (sock) => {
        sock.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nall of it');
        sock.end(' until the end');
      },
      async (res) => {
        expect(res.status).toBe(200);
        expect((await readAll(res.body)).data.toString()).toBe('all of it until the end');
      },
    ));

  it('fails the body when the connection ends before Content-Length says', () =>
    against(truncated, async (res) => {
      await expect(readAll(res.body)).rejects.toThrow('connection closed before the end of the body');
    }));

  it('keeps a failure that comes before anyone reads the body for its reader (nothing unhandled)', () =>
    against(truncated, async (res) => {
      await new Promise((r) => setTimeout(r, 50)); // the connection ends meanwhile
      expect(res.body.destroyed).toBe(true);
      await expect(readAll(res.body)).rejects.toThrow('connection closed before the end of the body');
    }));

  it('refuses a response head that does not end, or is not HTTP', async () => {
    const big = await rawServer((sock) => sock.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEAD + 10)}`));
    const bad = await rawServer((sock) => sock.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    try {
      await expect(http1Get(new URL(`${big.url}/`), { headers: {}, signal: never() })).rejects.toThrow(
        'response head larger than',
      );
      await expect(http1Get(new URL(`${bad.url}/`), { headers: {}, signal: never() })).rejects.toThrow(
        HttpProtocolError,
      );
    } finally {
      await big.close();
      await bad.close();
    }
  });
});
