// The first-request sniffer on its own: which connections go straight to nghttp2, the ACK of the
// listener's own SETTINGS cut out of the replayed bytes, bytes that are not HTTP/2.
import { encodeBlock, type HeaderField } from './hpack';
import {
  AuthorityRewriter,
  FLAG_END_HEADERS,
  FLAG_PADDED,
  FRAME_CONTINUATION,
  FRAME_HEADERS,
  frameHeader,
  H2ProtocolError,
  PREFACE,
} from './h2_authority';
import { FirstRequestSniffer, SERVER_PREFACE } from './h2_sniff';

const SETTINGS = frameHeader(0, 0x4, 0, 0);
const ACK = frameHeader(0, 0x4, 0x1, 0);
const WINDOW_UPDATE = Buffer.concat([frameHeader(4, 0x8, 0, 0), Buffer.from([0, 1, 0, 0])]);

function request(authority: string | null): HeaderField[] {
  const f: HeaderField[] = [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: '/runtime.v1.RuntimeService/Version' },
  ];
  if (authority !== null) f.push({ name: ':authority', value: authority });
  f.push({ name: 'content-type', value: 'application/grpc' });
  return f;
}

function headers(fields: HeaderField[], stream = 1): Buffer {
  const block = encodeBlock(fields);
  return Buffer.concat([frameHeader(block.length, FRAME_HEADERS, FLAG_END_HEADERS, stream), block]);
}

describe('FirstRequestSniffer', () => {
  test('the listener preface is an empty SETTINGS frame', () => {
    expect(SERVER_PREFACE).toEqual(SETTINGS);
  });

  test.each([
    ['localhost', true],
    ['%2Frun%2Fberth.sock', true],
    ['/run/berth/berth.sock', false],
    ['', false],
    [null, false],
  ])('authority %p: direct %p, once both the request and the ACK are in', (authority, direct) => {
    const s = new FirstRequestSniffer();
    const req = headers(request(authority));
    expect(s.push(Buffer.concat([PREFACE, SETTINGS, WINDOW_UPDATE]))).toBeUndefined();
    expect(s.push(req)).toBeUndefined(); // no ACK yet
    const got = s.push(ACK);
    expect(got).toEqual({
      direct,
      ackSeen: true,
      bytes: Buffer.concat([PREFACE, SETTINGS, WINDOW_UPDATE, req]),
    });
  });

  test('the ACK before the request (a client that waited for our SETTINGS) is cut out too', () => {
    const s = new FirstRequestSniffer();
    const req = headers(request('localhost'));
    const all = Buffer.concat([PREFACE, SETTINGS, ACK, req]);
    // byte by byte: frames split anywhere
    let got;
    for (let i = 0; i < all.length; i++) {
      got = s.push(all.subarray(i, i + 1));
      if (i < all.length - 1) expect(got).toBeUndefined();
    }
    expect(got).toEqual({ direct: true, ackSeen: true, bytes: Buffer.concat([PREFACE, SETTINGS, req]) });
  });

  test('only the first ACK is cut; a header block over CONTINUATION and padding is read whole', () => {
    const s = new FirstRequestSniffer();
    const block = encodeBlock(request('localhost'));
    const first = Buffer.concat([Buffer.from([2]), block.subarray(0, 10), Buffer.alloc(2)]);
    const frames = Buffer.concat([
      frameHeader(first.length, FRAME_HEADERS, FLAG_PADDED, 1),
      first,
      frameHeader(block.length - 10, FRAME_CONTINUATION, FLAG_END_HEADERS, 1),
      block.subarray(10),
    ]);
    expect(s.push(Buffer.concat([PREFACE, SETTINGS, ACK, frames]))).toEqual({
      direct: true,
      ackSeen: true,
      bytes: Buffer.concat([PREFACE, SETTINGS, frames]),
    });
  });

  test('not HTTP/2, or a frame inside a header block, is a protocol error', () => {
    expect(() => new FirstRequestSniffer().push(Buffer.from('GET / HTTP/1.1\r\n'))).toThrow(H2ProtocolError);
    const block = encodeBlock(request('localhost'));
    const open = Buffer.concat([frameHeader(block.length, FRAME_HEADERS, 0, 1), block]);
    expect(() =>
      new FirstRequestSniffer().push(Buffer.concat([PREFACE, SETTINGS, open, WINDOW_UPDATE])),
    ).toThrow(/inside a header block/);
  });

  test('giveUp hands over what came, to the rewriter, which then drops the late ACK', () => {
    const s = new FirstRequestSniffer();
    expect(s.push(Buffer.concat([PREFACE, SETTINGS]))).toBeUndefined();
    const given = s.giveUp();
    expect(given).toEqual({ direct: false, ackSeen: false, bytes: Buffer.concat([PREFACE, SETTINGS]) });
    const rw = new AuthorityRewriter(!given.ackSeen);
    const out = Buffer.concat([
      ...rw.push(given.bytes),
      ...rw.push(Buffer.concat([ACK, WINDOW_UPDATE, ACK])),
    ]);
    // the first ACK (ours) is gone, the second (the server's own) passes
    expect(out).toEqual(Buffer.concat([PREFACE, SETTINGS, WINDOW_UPDATE, ACK]));
  });
});
