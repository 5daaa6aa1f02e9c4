import * as crypto from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { once } from 'events';
import { finished } from 'stream/promises';
import {
  SpdyConnection,
  SpdyConnectionOptions,
  SpdyStream,
  SpdyStreamResetError,
  DEFAULT_WINDOW,
} from './spdy-conn';
import {
  SpdyFrame,
  SpdyFrameEncoder,
  SpdyFrameParser,
  FLAG_FIN,
  RstStatus,
  GoAwayStatus,
} from './spdy-frames';

jest.setTimeout(30_000);

let dir: string;
let sockPath: string;
let server: net.Server;
let accepted: net.Socket[];
let pending: ((s: net.Socket) => void)[];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-spdy-'));
  sockPath = path.join(dir, 's.sock');
  accepted = [];
  pending = [];
  server = net.createServer((s) => {
    accepted.push(s);
    const w = pending.shift();
    if (w) w(s);
  });
  server.listen(sockPath);
  await once(server, 'listening');
});

afterAll(async () => {
  for (const s of accepted) s.destroy();
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A connected unix socket pair through the test server. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const serverSide = new Promise<net.Socket>((resolve) => pending.push(resolve));
  const client = net.connect(sockPath);
  await once(client, 'connect');
  return [await serverSide, client];
}

interface Pair {
  srv: SpdyConnection;
  cli: SpdyConnection;
  srvSock: net.Socket;
  cliSock: net.Socket;
}

const conns: SpdyConnection[] = [];
afterEach(() => {
  for (const c of conns.splice(0)) c.destroy();
});

async function spdyPair(
  srvOpts: Partial<SpdyConnectionOptions> = {},
  cliOpts: Partial<SpdyConnectionOptions> = {},
): Promise<Pair> {
  const [srvSock, cliSock] = await socketPair();
  const srv = new SpdyConnection(srvSock, { mode: 'server', ...srvOpts });
  const cli = new SpdyConnection(cliSock, { mode: 'client', ...cliOpts });
  conns.push(srv, cli);
  return { srv, cli, srvSock, cliSock };
}

function nextStream(conn: SpdyConnection): Promise<SpdyStream> {
  return new Promise((resolve) => conn.once('stream', (s: SpdyStream) => resolve(s)));
}

/** Reads to the end without destroying the stream (async iteration would, write side included). */
function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before end')));
  });
}

/** Watches raw bytes on a socket with an independent parser. */
function tap(sock: net.Socket, onFrame: (f: SpdyFrame) => void): void {
  const p = new SpdyFrameParser();
  sock.on('data', (c: Buffer) => p.push(c).forEach(onFrame));
}

/** A hand-driven peer speaking raw frames, like Go's spdystream (no SETTINGS, no flow control). */
async function rawPeer(srvOpts: Partial<SpdyConnectionOptions> = {}) {
  const [srvSock, sock] = await socketPair();
  const srv = new SpdyConnection(srvSock, { mode: 'server', ...srvOpts });
  conns.push(srv);
  const enc = new SpdyFrameEncoder();
  const frames: SpdyFrame[] = [];
  const waiters: (() => void)[] = [];
  tap(sock, (f) => {
    frames.push(f);
    waiters.splice(0).forEach((w) => w());
  });
  const send = (f: SpdyFrame): boolean => sock.write(enc.encode(f));
  const waitFor = async (pred: (f: SpdyFrame) => boolean): Promise<SpdyFrame> => {
    for (;;) {
      const f = frames.find(pred);
      if (f) return f;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { srv, sock, send, frames, waitFor };
}

const syn = (streamId: number, headers: Record<string, string>, flags = 0): SpdyFrame => ({
  type: 'syn_stream',
  streamId,
  associatedStreamId: 0,
  priority: 0,
  slot: 0,
  flags,
  headers,
});

describe('SpdyConnection', () => {
  it('opens a stream with headers, replies, and carries data both ways with FIN', async () => {
    const { srv, cli } = await spdyPair();
    const got = nextStream(srv);
    const s = cli.openStream({ streamtype: 'stdin', port: '80' });
    const ss = await got;
    expect({ ...ss.headers }).toEqual({ streamtype: 'stdin', port: '80' });
    expect(ss.id).toBe(1);
    await expect(s.waitReply()).resolves.toEqual({});
    s.end('hello');
    expect((await readAll(ss)).toString()).toBe('hello');
    ss.end('world');
    expect((await readAll(s)).toString()).toBe('world');
    await Promise.all([finished(s), finished(ss)]);
    expect(srv.streamCount).toBe(0);
    expect(cli.streamCount).toBe(0);
  });

  it('runs 100 streams in parallel, each echoed intact', async () => {
    const { srv, cli } = await spdyPair();
    srv.on('stream', (s: SpdyStream) => s.pipe(s));
    const payloads = Array.from({ length: 100 }, () => crypto.randomBytes(50_000 + crypto.randomInt(50_000)));
    const results = await Promise.all(
      payloads.map(async (p, i) => {
        const s = cli.openStream({ streamtype: 'data', requestid: String(i) });
        s.end(p);
        return readAll(s);
      }),
    );
    results.forEach((r, i) => expect(r.equals(payloads[i])).toBe(true));
    expect(cli.streamCount).toBe(0);
  });

  it('moves 10 MB each way with never more than the window in flight', async () => {
    const { srv, cli, srvSock, cliSock } = await spdyPair();
    // Per direction: DATA bytes seen arriving minus WINDOW_UPDATE credit seen arriving back.
    const inflight = {
      up: 0,
      down: 0,
      upSession: 0,
      downSession: 0,
      maxUp: 0,
      maxDown: 0,
      maxUpS: 0,
      maxDownS: 0,
    };
    tap(srvSock, (f) => {
      if (f.type === 'data') {
        inflight.up += f.data.length;
        inflight.upSession += f.data.length;
        inflight.maxUp = Math.max(inflight.maxUp, inflight.up);
        inflight.maxUpS = Math.max(inflight.maxUpS, inflight.upSession);
      } else if (f.type === 'window_update') {
        if (f.streamId === 0) inflight.downSession -= f.delta;
        else inflight.down -= f.delta;
      }
    });
    tap(cliSock, (f) => {
      if (f.type === 'data') {
        inflight.down += f.data.length;
        inflight.downSession += f.data.length;
        inflight.maxDown = Math.max(inflight.maxDown, inflight.down);
        inflight.maxDownS = Math.max(inflight.maxDownS, inflight.downSession);
      } else if (f.type === 'window_update') {
        if (f.streamId === 0) inflight.upSession -= f.delta;
        else inflight.up -= f.delta;
      }
    });
    const up = crypto.randomBytes(10 * 1024 * 1024);
    const down = crypto.randomBytes(10 * 1024 * 1024);
    const got = nextStream(srv);
    const s = cli.openStream({ streamtype: 'stdin' });
    s.write(up);
    s.end();
    const ss = await got;
    // A consumer that does not read for a while: the sender must stop at the window.
    await new Promise((r) => setTimeout(r, 200));
    expect(inflight.maxUp).toBeLessThanOrEqual(DEFAULT_WINDOW);
    expect(inflight.maxUp).toBeGreaterThan(DEFAULT_WINDOW / 2);
    ss.end(down);
    const [a, b] = await Promise.all([readAll(ss), readAll(s)]);
    expect(a.equals(up)).toBe(true);
    expect(b.equals(down)).toBe(true);
    expect(inflight.maxUp).toBeLessThanOrEqual(DEFAULT_WINDOW);
    expect(inflight.maxDown).toBeLessThanOrEqual(DEFAULT_WINDOW);
    expect(inflight.maxUpS).toBeLessThanOrEqual(DEFAULT_WINDOW);
    expect(inflight.maxDownS).toBeLessThanOrEqual(DEFAULT_WINDOW);
  });

  it('honours a larger advertised window and session window', async () => {
    const { srv, cli, srvSock } = await spdyPair({ initialWindowSize: 1 << 20, sessionWindowSize: 4 << 20 });
    let maxInflight = 0;
    let inflight = 0;
    tap(srvSock, (f) => {
      if (f.type === 'data') maxInflight = Math.max(maxInflight, (inflight += f.data.length));
    });
    const got = nextStream(srv);
    const s = cli.openStream({ streamtype: 'stdin' });
    s.end(crypto.randomBytes(3 << 20));
    const ss = await got;
    await new Promise((r) => setTimeout(r, 200));
    expect(maxInflight).toBe(1 << 20);
    expect((await readAll(ss)).length).toBe(3 << 20);
  });

  it('interoperates with a peer that does no flow control (spdystream)', async () => {
    const peer = await rawPeer();
    const got = nextStream(peer.srv);
    peer.send(syn(1, { streamtype: 'stdout' }));
    const ss = await got;
    await peer.waitFor((f) => f.type === 'syn_reply' && f.streamId === 1);
    // The peer never sends WINDOW_UPDATE: 1 MiB must still get through.
    const big = crypto.randomBytes(1 << 20);
    ss.end(big);
    await peer.waitFor((f) => f.type === 'data' && (f.flags & FLAG_FIN) !== 0);
    const data = Buffer.concat(
      peer.frames.flatMap((f) => (f.type === 'data' && f.streamId === 1 ? [f.data] : [])),
    );
    expect(data.equals(big)).toBe(true);
    // And it may overrun our window without being reset.
    const up = crypto.randomBytes(1 << 20);
    peer.send({ type: 'data', streamId: 1, flags: 0, data: up.subarray(0, 600_000) });
    peer.send({ type: 'data', streamId: 1, flags: FLAG_FIN, data: up.subarray(600_000) });
    expect((await readAll(ss)).equals(up)).toBe(true);
    expect(peer.frames.some((f) => f.type === 'rst_stream')).toBe(false);
  });

  it('pauses reading from a window-ignoring peer while a stream is not consumed', async () => {
    const peer = await rawPeer();
    const got = nextStream(peer.srv);
    peer.send(syn(1, { streamtype: 'stdin' }));
    const ss = await got;
    ss.pause();
    const chunk = Buffer.alloc(256 * 1024, 1);
    let written = 0;
    for (let i = 0; i < 40; i++) {
      written += chunk.length;
      peer.send({ type: 'data', streamId: 1, flags: 0, data: chunk });
    }
    await new Promise((r) => setTimeout(r, 300));
    // The server stopped reading the socket: only a couple of frames sit in memory.
    expect(ss.readableLength).toBeGreaterThan(0);
    expect(ss.readableLength).toBeLessThan(2 * 1024 * 1024);
    expect(peer.sock.writableLength).toBeGreaterThan(0);
    peer.send({ type: 'data', streamId: 1, flags: FLAG_FIN, data: Buffer.alloc(0) });
    ss.resume();
    expect((await readAll(ss)).length).toBe(written);
  });

  it('answers pings and measures its own', async () => {
    const { srv, cli } = await spdyPair();
    await expect(cli.ping()).resolves.toBeGreaterThanOrEqual(0);
    await expect(srv.ping()).resolves.toBeGreaterThanOrEqual(0);
    const peer = await rawPeer();
    peer.send({ type: 'ping', id: 1 });
    await peer.waitFor((f) => f.type === 'ping' && f.id === 1);
  });

  it('goaway: no new streams, open ones finish, then the connection closes', async () => {
    const { srv, cli } = await spdyPair();
    const got = nextStream(srv);
    const s = cli.openStream({ streamtype: 'stdout' });
    const ss = await got;
    const goaway = once(cli, 'goaway');
    srv.close();
    const [lastGood, status] = await goaway;
    expect(lastGood).toBe(1);
    expect(status).toBe(GoAwayStatus.OK);
    expect(() => cli.openStream({ streamtype: 'stdin' })).toThrow(/going away/);
    const closed = Promise.all([once(srv, 'close'), once(cli, 'close')]);
    ss.end('last words');
    s.end();
    expect((await readAll(s)).toString()).toBe('last words');
    await readAll(ss);
    await closed;
    expect(srv.destroyed && cli.destroyed).toBe(true);
  });

  it('close with resetStreams ends everything at once, after data already written', async () => {
    const { srv, cli } = await spdyPair();
    const got = nextStream(srv);
    const s = cli.openStream({ streamtype: 'stdout' });
    const ss = await got;
    const reset = once(s, 'reset');
    ss.write('before');
    srv.close({ resetStreams: true });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    expect(await reset).toEqual([RstStatus.CANCEL, true]);
    expect(Buffer.concat(chunks).toString()).toBe('before');
    await once(cli, 'close');
  });

  it('resets: by either side, unknown streams, refused streams, bad ids', async () => {
    const { srv, cli } = await spdyPair({ acceptStream: (h) => h.streamtype !== 'bogus' });
    const got = nextStream(srv);
    const s = cli.openStream({ streamtype: 'stdin' });
    const ss = await got;
    const r = once(ss, 'reset');
    s.reset();
    expect(await r).toEqual([RstStatus.CANCEL, true]);
    expect(ss.aborted).toBe(true);
    const refused = cli.openStream({ streamtype: 'bogus' });
    await expect(refused.waitReply()).rejects.toEqual(new SpdyStreamResetError(RstStatus.REFUSED_STREAM));

    const peer = await rawPeer();
    peer.send({ type: 'data', streamId: 5, flags: 0, data: Buffer.from('x') });
    await peer.waitFor(
      (f) => f.type === 'rst_stream' && f.streamId === 5 && f.status === RstStatus.INVALID_STREAM,
    );
    peer.send(syn(2, { streamtype: 'stdin' }));
    await peer.waitFor(
      (f) => f.type === 'rst_stream' && f.streamId === 2 && f.status === RstStatus.PROTOCOL_ERROR,
    );
  });

  it('accepts SYN_STREAM with FLAG_FIN (a write-only stream from the peer) and still sends on it', async () => {
    const peer = await rawPeer();
    const got = nextStream(peer.srv);
    peer.send(syn(1, { streamtype: 'error' }, FLAG_FIN));
    const ss = await got;
    expect((await readAll(ss)).length).toBe(0);
    ss.end('{"metadata":{},"status":"Success"}');
    const fin = await peer.waitFor((f) => f.type === 'data' && f.streamId === 1 && f.data.length > 0);
    if (fin.type !== 'data') throw new Error('type');
    expect(fin.data.toString()).toContain('Success');
    await finished(ss);
    expect(peer.srv.streamCount).toBe(0);
  });

  it('abrupt socket close destroys every stream and closes the connection', async () => {
    const { srv, cli, cliSock } = await spdyPair();
    const streams: SpdyStream[] = [];
    srv.on('stream', (s: SpdyStream) => streams.push(s));
    for (let i = 0; i < 5; i++) cli.openStream({ streamtype: 'stdin' }).write('x');
    while (streams.length < 5) await new Promise((r) => setTimeout(r, 5));
    const closed = once(srv, 'close');
    cliSock.destroy();
    await closed;
    for (const s of streams) {
      expect(s.destroyed).toBe(true);
      expect(s.aborted).toBe(true);
      await expect(finished(s)).rejects.toThrow(/premature/i);
    }
    expect(srv.streamCount).toBe(0);
    expect(() => srv.openStream({})).toThrow(/closed/);
  });

  it('protocol garbage gets GOAWAY(PROTOCOL_ERROR) and a closed connection', async () => {
    const peer = await rawPeer();
    const closed = once(peer.srv, 'close');
    peer.sock.write(Buffer.from('80020001000000040000000000', 'hex'));
    const [err] = await closed;
    expect(String(err)).toMatch(/version/);
    await peer.waitFor((f) => f.type === 'goaway' && f.status === GoAwayStatus.PROTOCOL_ERROR);
  });

  it('delivers bytes that arrived with the HTTP upgrade (head) first', async () => {
    const [srvSock, cliSock] = await socketPair();
    const enc = new SpdyFrameEncoder();
    const wire = Buffer.concat([
      enc.encode(syn(1, { streamtype: 'stdin' })),
      enc.encode({ type: 'data', streamId: 1, flags: 0, data: Buffer.from('ab') }),
      enc.encode({ type: 'data', streamId: 1, flags: FLAG_FIN, data: Buffer.from('cd') }),
    ]);
    const srv = new SpdyConnection(srvSock, { mode: 'server', head: wire.subarray(0, wire.length - 3) });
    conns.push(srv);
    const got = nextStream(srv);
    cliSock.write(wire.subarray(wire.length - 3));
    expect((await readAll(await got)).toString()).toBe('abcd');
    cliSock.destroy();
  });
});
