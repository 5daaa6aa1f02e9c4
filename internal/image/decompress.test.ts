import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { coalesce, decompressStream, sniffCompression } from './decompress';

const collect = async (r: Readable): Promise<Buffer> => {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
};

describe('decompressStream', () => {
  it('sniffs gzip from the first bytes even when they arrive one at a time', async () => {
    const data = randomBytes(300_000);
    const gz = gzipSync(data);
    const chunks = [gz.subarray(0, 1), gz.subarray(1, 2), gz.subarray(2, 3), gz.subarray(3)];
    expect((await collect(await decompressStream(Readable.from(chunks), 'x'))).equals(data)).toBe(true);
  });

  it('passes an uncompressed stream through whole, however short', async () => {
    const data = Buffer.from('plain tar bytes');
    expect((await collect(await decompressStream(Readable.from([data]), 'x'))).equals(data)).toBe(true);
    expect(sniffCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(sniffCompression(Buffer.from('ustar'))).toBe('none');
    const tiny = Buffer.from('ab');
    expect(sniffCompression(tiny)).toBe('none');
    expect((await collect(await decompressStream(Readable.from([tiny]), 'x'))).equals(tiny)).toBe(true);
    expect((await collect(await decompressStream(Readable.from([]), 'x'))).length).toBe(0);
  });

  it('reports each input chunk once gunzip is done with it, every byte of it used', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const gz = gzipSync(data);
    const size = 1024 * 1024; // chunks at least INFLATE_BATCH reach gunzip as they are
    const chunks: Buffer[] = [];
    for (let o = 0; o < gz.length; o += size) chunks.push(Buffer.from(gz.subarray(o, o + size)));
    const consumed: Buffer[] = [];
    const out = await collect(await decompressStream(Readable.from(chunks), 'x', (c) => consumed.push(c)));
    expect(out.equals(data)).toBe(true);
    expect(consumed.length).toBe(chunks.length);
    expect(Buffer.concat(consumed).equals(gz)).toBe(true);
    // the first chunk is a copy (its first bytes were read to sniff the compression), and so is
    // the last, shorter than a batch (joined at the end); the rest are the very buffers that came in
    expect(chunks.length).toBe(4);
    expect(consumed[1]).toBe(chunks[1]);
    expect(consumed[2]).toBe(chunks[2]);
  });

  it('a corrupt gzip fails the returned stream', async () => {
    const gz = gzipSync(randomBytes(100_000));
    gz.fill(0x55, 20, 200);
    await expect(collect(await decompressStream(Readable.from([gz]), 'x'))).rejects.toThrow();
  });
});

describe('coalesce', () => {
  it('joins small chunks into batches of at least the minimum, keeping every byte in order', async () => {
    const data = randomBytes(100_000);
    const chunks: Buffer[] = [];
    for (let off = 0; off < data.length; off += 7_000) chunks.push(data.subarray(off, off + 7_000));
    const sizes: number[] = [];
    const out: Buffer[] = [];
    for await (const c of Readable.from(chunks).pipe(coalesce(30_000))) {
      sizes.push((c as Buffer).length);
      out.push(c as Buffer);
    }
    expect(Buffer.concat(out).equals(data)).toBe(true);
    expect(sizes.slice(0, -1).every((n) => n >= 30_000)).toBe(true);
    expect(sizes.length).toBeLessThanOrEqual(4);
  });
});
