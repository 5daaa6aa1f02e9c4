import * as crypto from 'crypto';
import * as zlib from 'zlib';
import {
  SPDY3_DICTIONARY,
  adler32,
  SpdyHeaderCompressor,
  SpdyHeaderDecompressor,
  encodeHeaderBlock,
  decodeHeaderBlock,
} from './spdy-zlib';
import {
  SpdyFrame,
  SpdyFrameEncoder,
  SpdyFrameParser,
  SpdyProtocolError,
  encodeDataHeader,
  FLAG_FIN,
  RstStatus,
} from './spdy-frames';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// Two SYN_STREAM frames produced by an independent zlib (CPython's, level 9, one persistent
// stream with the SPDY/3 dictionary, Z_SYNC_FLUSH per frame), laid out as Go's framer does:
// stream 1 {streamtype: error}; stream 3 with FLAG_FIN {streamtype: stdout, port: 8080}.
const VECTOR_1 =
  '80030001000000280000000100000000000078f9e3c6a7c202a62346703a2b294a4dcc851625aca9a08006000000ffff';
const VECTOR_2 = '80030001010000250000000300000000000002651c0c2960624ec90797d1c022bb084c5b18581800000000ffff';

describe('SPDY/3 dictionary and header compression', () => {
  it('is the 1423-byte dictionary of the SPDY/3 draft', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(SPDY3_DICTIONARY.subarray(0, 11)).toEqual(Buffer.from('\0\0\0\x07options', 'latin1'));
    expect(SPDY3_DICTIONARY.subarray(-7).toString('latin1')).toBe(',enq=0.');
    expect(crypto.createHash('sha256').update(SPDY3_DICTIONARY).digest('hex')).toBe(
      '51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02',
    );
    expect(adler32(SPDY3_DICTIONARY)).toBe(0xe3c6a7c2);
  });

  it('adler32 agrees with the dictionary id zlib writes', () => {
    const z = zlib.deflateSync(Buffer.from('x'), { dictionary: SPDY3_DICTIONARY });
    expect(z.readUInt32BE(2)).toBe(adler32(SPDY3_DICTIONARY));
    const big = crypto.randomBytes(100_000);
    expect(adler32(big)).toBe(zlib.deflateSync(Buffer.alloc(0), { dictionary: big }).readUInt32BE(2));
  });

  it('compressor output is one continuous zlib stream a stock inflater reads', () => {
    const c = new SpdyHeaderCompressor();
    const blocks = [
      encodeHeaderBlock({ streamtype: 'stdin' }),
      encodeHeaderBlock({ streamtype: 'stdout' }),
      Buffer.from(crypto.randomBytes(40_000).toString('hex')), // longer than the window
      encodeHeaderBlock({ streamtype: 'stdin', port: '80' }),
    ];
    const out = blocks.map((b) => c.compress(b));
    expect(out[0].subarray(0, 6)).toEqual(hex('78f9e3c6a7c2'));
    for (const o of out) expect(o.subarray(-4)).toEqual(hex('0000ffff')); // sync flush marker
    const all = zlib.inflateSync(Buffer.concat(out), {
      dictionary: SPDY3_DICTIONARY,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    expect(all).toEqual(Buffer.concat(blocks));
    // Back-references across frames: the second block reuses the first one's bytes.
    const fresh = new SpdyHeaderCompressor().compress(blocks[1]).subarray(6);
    expect(out[1].length).toBeLessThan(fresh.length);
  });

  it('decompressor reads a stock deflater persistent stream frame by frame', async () => {
    const d = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 });
    const blocks = [
      encodeHeaderBlock({ streamtype: 'error' }),
      Buffer.from('a'.repeat(50_000) + 'tail'),
      encodeHeaderBlock({ streamtype: 'error' }),
    ];
    const dec = new SpdyHeaderDecompressor();
    for (const b of blocks) {
      const chunk = await new Promise<Buffer>((resolve) => {
        const parts: Buffer[] = [];
        const onData = (p: Buffer): number => parts.push(p);
        d.on('data', onData);
        d.write(b);
        d.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          d.off('data', onData);
          resolve(Buffer.concat(parts));
        });
      });
      expect(dec.decompress(chunk)).toEqual(b);
    }
    d.close();
  });

  it('rejects a stream compressed with another dictionary, and garbage', () => {
    const other = zlib.deflateSync(Buffer.from('abc'), { dictionary: Buffer.from('nope') });
    expect(() => new SpdyHeaderDecompressor().decompress(other)).toThrow(/unknown dictionary/);
    expect(() => new SpdyHeaderDecompressor().decompress(hex('78f9e3c6a7c2ffffffff'))).toThrow(
      /decompression/,
    );
    expect(() => new SpdyHeaderDecompressor().decompress(hex('1234'))).toThrow(/zlib header/);
  });

  it('bounds the size of a decompressed header block', () => {
    const c = new SpdyHeaderCompressor();
    const bomb = c.compress(Buffer.alloc(4 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(10_000);
    expect(() => new SpdyHeaderDecompressor(1024 * 1024).decompress(bomb)).toThrow();
  });

  it('header blocks: 32-bit lengths, lower-case names, NUL-joined duplicates, strict parsing', () => {
    const b = encodeHeaderBlock({ StreamType: 'data', port: '8080' });
    expect(b).toEqual(
      Buffer.concat([
        hex('00000002'),
        hex('0000000a'),
        Buffer.from('streamtype'),
        hex('00000004'),
        Buffer.from('data'),
        hex('00000004'),
        Buffer.from('port'),
        hex('00000004'),
        Buffer.from('8080'),
      ]),
    );
    expect({ ...decodeHeaderBlock(b) }).toEqual({ streamtype: 'data', port: '8080' });
    const dup = Buffer.concat([
      hex('00000002'),
      b.subarray(4, 26),
      b.subarray(4, 18),
      hex('00000001'),
      Buffer.from('x'),
    ]);
    expect(decodeHeaderBlock(dup).streamtype).toBe('data\0x');
    expect(() => decodeHeaderBlock(b.subarray(0, b.length - 1))).toThrow(/malformed/);
    expect(() => decodeHeaderBlock(Buffer.concat([b, hex('00')]))).toThrow(/trailing/);
    expect(() => decodeHeaderBlock(hex('00000001ffffffff'))).toThrow(/malformed/);
    // A "__proto__" header is just a header.
    const proto = decodeHeaderBlock(encodeHeaderBlock({ ['__proto__']: 'x' }));
    expect(Object.keys(proto)).toEqual(['__proto__']);
  });
});

describe('SPDY frame parser and encoder', () => {
  it('decodes SYN_STREAM frames from an independent implementation', () => {
    const p = new SpdyFrameParser();
    const frames = p.push(Buffer.concat([hex(VECTOR_1), hex(VECTOR_2)]));
    expect(frames).toHaveLength(2);
    const [a, b] = frames;
    expect(a).toMatchObject({
      type: 'syn_stream',
      streamId: 1,
      associatedStreamId: 0,
      priority: 0,
      flags: 0,
    });
    expect(b).toMatchObject({ type: 'syn_stream', streamId: 3, flags: FLAG_FIN });
    if (a.type !== 'syn_stream' || b.type !== 'syn_stream') throw new Error('type');
    expect({ ...a.headers }).toEqual({ streamtype: 'error' });
    expect({ ...b.headers }).toEqual({ streamtype: 'stdout', port: '8080' });
  });

  it('encodes the fixed part of control frames byte for byte', () => {
    const e = new SpdyFrameEncoder();
    expect(e.encode({ type: 'rst_stream', streamId: 5, status: RstStatus.CANCEL })).toEqual(
      hex('800300030000000800000005' + '00000005'),
    );
    expect(e.encode({ type: 'ping', id: 7 })).toEqual(hex('800300060000000400000007'));
    expect(e.encode({ type: 'goaway', lastGoodStreamId: 9, status: 0 })).toEqual(
      hex('80030007000000080000000900000000'),
    );
    expect(e.encode({ type: 'window_update', streamId: 0, delta: 0x10000 })).toEqual(
      hex('80030009000000080000000000010000'),
    );
    expect(e.encode({ type: 'settings', flags: 0, entries: [{ id: 7, flags: 0, value: 65536 }] })).toEqual(
      hex('800300040000000c000000010000000700010000'),
    );
    expect(e.encode({ type: 'data', streamId: 3, flags: FLAG_FIN, data: Buffer.from('hi') })).toEqual(
      hex('0000000301000002' + '6869'),
    );
    expect(encodeDataHeader(1, 0, 0xffffff)).toEqual(hex('0000000100ffffff'));
    const syn = e.encode({
      type: 'syn_stream',
      streamId: 1,
      associatedStreamId: 0,
      priority: 0,
      slot: 0,
      flags: 0,
      headers: { streamtype: 'error' },
    });
    // Control header, stream id, associated id, priority, slot, zlib header and dictionary id
    // as in the CPython-made frame (the deflate body may differ between zlib builds).
    expect(syn.subarray(0, 4)).toEqual(hex(VECTOR_1).subarray(0, 4));
    expect(syn.subarray(8, 24)).toEqual(hex(VECTOR_1).subarray(8, 24));
    expect(syn.readUInt32BE(4) & 0xffffff).toBe(syn.length - 8);
  });

  const sample = (): SpdyFrame[] => [
    {
      type: 'syn_stream',
      streamId: 1,
      associatedStreamId: 0,
      priority: 3,
      slot: 0,
      flags: 0,
      headers: { streamtype: 'stdin' },
    },
    { type: 'syn_reply', streamId: 1, flags: 0, headers: {} },
    { type: 'headers', streamId: 1, flags: FLAG_FIN, headers: { a: 'b' } },
    { type: 'data', streamId: 1, flags: 0, data: crypto.randomBytes(3000) },
    { type: 'data', streamId: 1, flags: FLAG_FIN, data: Buffer.alloc(0) },
    { type: 'rst_stream', streamId: 3, status: RstStatus.REFUSED_STREAM },
    { type: 'settings', flags: 0, entries: [{ id: 7, flags: 1, value: 1 << 20 }] },
    { type: 'ping', id: 1 },
    { type: 'goaway', lastGoodStreamId: 7, status: 1 },
    { type: 'window_update', streamId: 1, delta: 12345 },
    {
      type: 'syn_stream',
      streamId: 3,
      associatedStreamId: 0,
      priority: 0,
      slot: 0,
      flags: FLAG_FIN,
      headers: { streamtype: 'data', port: '80', requestid: '0' },
    },
    { type: 'unknown', frameType: 10, flags: 0, payload: Buffer.from('cred') },
  ];

  const normalise = (fs: SpdyFrame[]): unknown[] =>
    fs.map((f) => ('headers' in f ? { ...f, headers: { ...f.headers } } : f));

  it('round-trips every frame type, whole and fed one byte at a time', () => {
    const frames = sample();
    const enc = new SpdyFrameEncoder();
    const wire = Buffer.concat(frames.map((f) => enc.encode(f)));
    expect(normalise(new SpdyFrameParser().push(wire))).toEqual(normalise(frames));
    const p = new SpdyFrameParser();
    const got: SpdyFrame[] = [];
    for (let i = 0; i < wire.length; i++) got.push(...p.push(wire.subarray(i, i + 1)));
    expect(normalise(got)).toEqual(normalise(frames));
    expect(p.pending).toBe(0);
  });

  it('handles random chunk boundaries', () => {
    const frames = sample();
    const enc = new SpdyFrameEncoder();
    const wire = Buffer.concat(frames.map((f) => enc.encode(f)));
    for (let round = 0; round < 20; round++) {
      const p = new SpdyFrameParser();
      const got: SpdyFrame[] = [];
      for (let i = 0; i < wire.length; ) {
        const n = 1 + crypto.randomInt(200);
        got.push(...p.push(wire.subarray(i, i + n)));
        i += n;
      }
      expect(normalise(got)).toEqual(normalise(frames));
    }
  });

  it('rejects malformed frames', () => {
    const bad = (s: string, re: RegExp): void => {
      expect(() => new SpdyFrameParser().push(hex(s))).toThrow(re);
    };
    bad('8002000600000004' + '00000001', /version/);
    bad('8003000600000005' + '0000000100', /PING/);
    bad('8003000900000004' + '00000001', /WINDOW_UPDATE/);
    bad('0000000000000001' + '00', /stream 0/);
    bad('8003000400000008' + '0000000200000000', /SETTINGS/);
    expect(() => new SpdyFrameParser({ maxControlFrame: 100 }).push(hex('8003000100000fff'))).toThrow(
      SpdyProtocolError,
    );
    expect(() => new SpdyFrameParser({ maxDataFrame: 10 }).push(hex('000000010000000b'))).toThrow(/exceeds/);
  });

  it('parses a 10 MB data frame arriving in 64 KiB chunks without quadratic copying', () => {
    const data = crypto.randomBytes(10 * 1024 * 1024);
    const wire = Buffer.concat([encodeDataHeader(1, 0, data.length), data]);
    const p = new SpdyFrameParser();
    const got: SpdyFrame[] = [];
    const t0 = Date.now();
    for (let i = 0; i < wire.length; i += 65536) got.push(...p.push(wire.subarray(i, i + 65536)));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(got).toHaveLength(1);
    if (got[0].type !== 'data') throw new Error('type');
    expect(got[0].data.equals(data)).toBe(true);
  });
});
