// The socket's authority rewriter: HPACK decoding (RFC 7541 examples), the frame rewriter on
// its own, and a real grpc-js server behind listenUnix answering a raw HTTP/2 client that sends
// the socket path, its %-encoded form, localhost, an empty value and no authority.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcFrame, rawGrpcCalls } from '../../test/lab/h2raw';
import {
  encodeBlock,
  encodeIndexed,
  encodeIndexedLiteral,
  HpackDecoder,
  huffmanDecode,
  huffmanEncode,
  type HeaderField,
} from './hpack';
import {
  AuthorityRewriter,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FLAG_PRIORITY,
  fixAuthority,
  frameHeader,
  H2ProtocolError,
  isAcceptedAuthority,
  PREFACE,
} from './h2_authority';
import { listenUnix } from './unix_listener';

describe('HPACK', () => {
  test('Huffman matches RFC 7541 C.4.1', () => {
    expect(huffmanEncode(Buffer.from('www.example.com')).toString('hex')).toBe('f1e3c2e5f23a6ba0ab90f4ff');
    expect(huffmanDecode(Buffer.from('f1e3c2e5f23a6ba0ab90f4ff', 'hex')).toString()).toBe('www.example.com');
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect(huffmanDecode(huffmanEncode(all)).equals(all)).toBe(true);
  });

  test('decodes RFC 7541 C.4 (requests with Huffman, dynamic table shared across blocks)', () => {
    const d = new HpackDecoder();
    expect(d.decode(Buffer.from('828684418cf1e3c2e5f23a6ba0ab90f4ff', 'hex'))).toEqual([
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'http' },
      { name: ':path', value: '/' },
      { name: ':authority', value: 'www.example.com' },
    ]);
    expect(d.decode(Buffer.from('828684be5886a8eb10649cbf', 'hex'))).toEqual([
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'http' },
      { name: ':path', value: '/' },
      { name: ':authority', value: 'www.example.com' },
      { name: 'cache-control', value: 'no-cache' },
    ]);
  });

  test('refuses malformed blocks', () => {
    expect(() => new HpackDecoder().decode(Buffer.from([0xff]))).toThrow(/truncated/);
    expect(() => new HpackDecoder().decode(Buffer.from([0xc0]))).toThrow(/not in the table/);
    expect(() => new HpackDecoder().decode(Buffer.from([0x82, 0x3f, 0xe1, 0x1f]))).toThrow(/size update/);
  });
});

describe('authority rewriting', () => {
  const req = (authority: string | null): HeaderField[] => [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: '/runtime.v1.RuntimeService/Version' },
    ...(authority === null ? [] : [{ name: ':authority', value: authority }]),
    { name: 'content-type', value: 'application/grpc' },
  ];

  test('accepted authorities', () => {
    for (const ok of ['localhost', 'localhost:10010', '%2Frun%2Fberth%2Fberth.sock', '[::1]:80']) {
      expect(isAcceptedAuthority(ok)).toBe(true);
    }
    for (const bad of ['', '/run/berth/berth.sock', 'a b', 'x\u00ff'])
      expect(isAcceptedAuthority(bad)).toBe(false);
  });

  test('fixAuthority replaces refused values, adds a missing one, keeps the rest and trailers', () => {
    expect(fixAuthority(req('/run/berth/berth.sock'))).toEqual(req('localhost'));
    expect(fixAuthority(req(''))).toEqual(req('localhost'));
    expect(fixAuthority(req(null))).toEqual(req('localhost'));
    expect(fixAuthority(req('%2Frun%2Fb.sock'))).toEqual(req('%2Frun%2Fb.sock'));
    const trailers = [{ name: 'grpc-status', value: '0' }];
    expect(fixAuthority(trailers)).toBe(trailers);
  });

  /** Feeds `input` to a rewriter `step` bytes at a time; returns the frames it passed on. */
  function run(
    input: Buffer,
    step = input.length,
  ): Array<{ type: number; flags: number; stream: number; payload: Buffer }> {
    const rw = new AuthorityRewriter();
    const chunks: Buffer[] = [];
    for (let i = 0; i < input.length; i += step) chunks.push(...rw.push(input.subarray(i, i + step)));
    const out = Buffer.concat(chunks);
    expect(out.subarray(0, PREFACE.length).equals(PREFACE)).toBe(true);
    const frames = [];
    for (let p = PREFACE.length; p < out.length; ) {
      const len = out.readUIntBE(p, 3);
      frames.push({
        type: out[p + 3],
        flags: out[p + 4],
        stream: out.readUInt32BE(p + 5),
        payload: out.subarray(p + 9, p + 9 + len),
      });
      p += 9 + len;
    }
    return frames;
  }

  test('rewrites across blocks that index the socket path, byte by byte, other frames untouched', () => {
    const path1 = '/run/berth/berth.sock';
    // block 1 adds the path (Huffman) to the client's table; block 2 refers to it by index
    const b1 = Buffer.concat([
      encodeIndexed(3),
      encodeIndexed(6),
      encodeIndexedLiteral({ name: ':path', value: '/runtime.v1.RuntimeService/Version' }, true),
      encodeIndexedLiteral({ name: ':authority', value: path1 }, true),
    ]);
    const b2 = Buffer.concat([encodeIndexed(3), encodeIndexed(6), encodeIndexed(63), encodeIndexed(62)]);
    const data = Buffer.from('0000000000', 'hex');
    const input = Buffer.concat([
      PREFACE,
      frameHeader(0, 0x4, 0, 0),
      frameHeader(b1.length, 0x1, FLAG_END_HEADERS, 1),
      b1,
      frameHeader(data.length, 0x0, FLAG_END_STREAM, 1),
      data,
      // block 2 with padding and priority, split into HEADERS + CONTINUATION
      frameHeader(1 + 5 + 2 + 3, 0x1, FLAG_PADDED | FLAG_PRIORITY | FLAG_END_STREAM, 3),
      Buffer.from([3]),
      Buffer.from([0, 0, 0, 1, 15]),
      b2.subarray(0, 2),
      Buffer.alloc(3),
      frameHeader(b2.length - 2, 0x9, FLAG_END_HEADERS, 3),
      b2.subarray(2),
    ]);
    for (const step of [input.length, 1, 7]) {
      const frames = run(input, step);
      expect(frames.map((f) => [f.type, f.flags, f.stream])).toEqual([
        [0x4, 0, 0],
        [0x1, FLAG_END_HEADERS, 1],
        [0x0, FLAG_END_STREAM, 1],
        [0x1, FLAG_END_HEADERS | FLAG_PRIORITY | FLAG_END_STREAM, 3],
      ]);
      expect(frames[2].payload.equals(data)).toBe(true);
      expect(frames[3].payload.subarray(0, 5).equals(Buffer.from([0, 0, 0, 1, 15]))).toBe(true);
      // a fresh decoder (nghttp2's side) reads both blocks with no shared state needed
      const d = new HpackDecoder(0, 0);
      const want = [
        { name: ':method', value: 'POST' },
        { name: ':scheme', value: 'http' },
        { name: ':path', value: '/runtime.v1.RuntimeService/Version' },
        { name: ':authority', value: 'localhost' },
      ];
      expect(d.decode(frames[1].payload)).toEqual(want);
      expect(d.decode(frames[3].payload.subarray(5))).toEqual(want);
    }
  });

  test('a re-encoded block larger than a frame goes out as HEADERS + CONTINUATION', () => {
    const big: HeaderField[] = [...req(null), { name: 'x-big', value: 'v'.repeat(40000) }];
    const b = encodeBlock(big);
    const frames = run(Buffer.concat([PREFACE, frameHeader(b.length, 0x1, FLAG_END_HEADERS, 1), b]));
    expect(frames.map((f) => f.type)).toEqual([0x1, 0x9, 0x9]);
    expect(frames.every((f) => f.payload.length <= 16384)).toBe(true);
    const fields = new HpackDecoder().decode(Buffer.concat(frames.map((f) => f.payload)));
    expect(fields.find((f) => f.name === ':authority')?.value).toBe('localhost');
    expect(fields.find((f) => f.name === 'x-big')?.value.length).toBe(40000);
  });

  test('garbage is a protocol error', () => {
    expect(() => new AuthorityRewriter().push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(H2ProtocolError);
    const bad = Buffer.from([0xc5]);
    expect(() =>
      new AuthorityRewriter().push(Buffer.concat([PREFACE, frameHeader(1, 0x1, FLAG_END_HEADERS, 1), bad])),
    ).toThrow(/HPACK/);
  });
});

describe('a grpc-js server behind listenUnix', () => {
  let dir: string;
  const servers: grpc.Server[] = [];
  const listeners: Array<{ close(): Promise<void> }> = [];
  const service = {
    Echo: {
      path: '/t.T/Echo',
      requestStream: false,
      responseStream: false,
      requestSerialize: (x: Buffer) => x,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (x: Buffer) => x,
      responseDeserialize: (b: Buffer) => b,
    },
  };
  const impl = {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request])),
  };
  const authorities = (sock: string): Array<string | null> => [
    sock,
    encodeURIComponent(sock),
    'localhost',
    '',
    null,
  ];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-h2-'));
  });
  afterAll(() => {
    for (const l of listeners) void l.close();
    for (const s of servers) s.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('every authority gets a real answer, on one connection and on separate ones', async () => {
    const sock = path.join(dir, 'rw.sock');
    const server = new grpc.Server();
    servers.push(server);
    server.addService(service, impl);
    listeners.push(await listenUnix(server, sock));
    const calls = authorities(sock).map((authority, i) => ({
      path: '/t.T/Echo',
      authority,
      message: Buffer.from(`m${i}`),
    }));
    const together = await rawGrpcCalls(sock, [...calls, ...calls]);
    together.forEach((r, i) => {
      expect(r).toMatchObject({ httpStatus: '200', grpcStatus: 0 });
      expect(r.message?.toString()).toBe(`echo:m${i % calls.length}`);
    });
    for (const c of calls) {
      const [r] = await rawGrpcCalls(sock, [c]);
      expect(r).toMatchObject({ httpStatus: '200', grpcStatus: 0 });
    }
    // a grpc-js client (localhost) keeps working too
    const client = new grpc.Client(`unix:${sock}`, grpc.credentials.createInsecure());
    const res = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        '/t.T/Echo',
        (x: Buffer) => x,
        (b: Buffer) => b,
        Buffer.from('js'),
        (e, v) => (e ? reject(e) : resolve(v!)),
      ),
    );
    client.close();
    expect(res.toString()).toBe('echo:js');
  });

  test('without the rewriter (plain bindAsync) nghttp2 resets the path and empty authorities', async () => {
    const sock = path.join(dir, 'plain.sock');
    const server = new grpc.Server();
    servers.push(server);
    server.addService(service, impl);
    await new Promise<void>((res, rej) =>
      server.bindAsync(`unix:${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
    );
    const [r] = await rawGrpcCalls(sock, [
      { path: '/t.T/Echo', authority: sock, message: grpcFrame(Buffer.alloc(0)) },
    ]);
    expect(r.rstCode).toBe(1); // PROTOCOL_ERROR: what crictl 1.26 saw
    const [e] = await rawGrpcCalls(sock, [{ path: '/t.T/Echo', authority: '', message: Buffer.alloc(0) }]);
    expect(e.rstCode).toBe(1);
  });
});
