import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTarSync, type TarEntry } from '../../test/lab/tar';
import { cleanPath, readFromLayers } from './layer-read';
import { openDecompressed, sniffCompression } from './decompress';

function reader(layers: TarEntry[][]): (path: string) => Promise<string | undefined> {
  const tars = layers.map((l) => makeTarSync(l));
  return async (p) =>
    (await readFromLayers(tars.length, async (i) => Readable.from([tars[i] as Buffer]), p))?.toString();
}

describe('readFromLayers', () => {
  const base: TarEntry[] = [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/passwd', content: 'base-passwd' },
    { path: 'etc/group', content: 'base-group' },
    { path: 'etc/sub/', type: 'dir' },
    { path: 'etc/sub/f', content: 'sub-f' },
    { path: 'data/', type: 'dir' },
    { path: 'data/real', content: 'real' },
  ];
  it('reads from the top layer that has the file', async () => {
    const read = reader([
      base,
      [
        { path: 'etc/', type: 'dir' },
        { path: 'etc/passwd', content: 'top-passwd' },
      ],
    ]);
    expect(await read('/etc/passwd')).toBe('top-passwd');
    expect(await read('etc/group')).toBe('base-group');
    expect(await read('/etc/missing')).toBeUndefined();
    expect(await read('/etc')).toBeUndefined();
  });
  it('honours whiteouts of files and parents', async () => {
    const read = reader([
      base,
      [
        { path: 'etc/.wh.group', content: '' },
        { path: 'etc/.wh.sub', content: '' },
      ],
    ]);
    expect(await read('/etc/group')).toBeUndefined();
    expect(await read('/etc/sub/f')).toBeUndefined();
    expect(await read('/etc/passwd')).toBe('base-passwd');
  });
  it('honours opaque directories', async () => {
    const read = reader([
      base,
      [
        { path: 'etc/', type: 'dir' },
        { path: 'etc/.wh..wh..opq', content: '' },
        { path: 'etc/passwd', content: 'new' },
      ],
    ]);
    expect(await read('/etc/passwd')).toBe('new');
    expect(await read('/etc/group')).toBeUndefined();
  });
  it('follows symlinks inside the image only', async () => {
    const read = reader([
      base,
      [
        { path: 'etc/', type: 'dir' },
        { path: 'etc/passwd', type: 'symlink', linkname: '../../../data/real' },
        { path: 'link', type: 'symlink', linkname: '/etc' },
        { path: 'loop', type: 'symlink', linkname: 'loop' },
        { path: 'hard', type: 'hardlink', linkname: 'etc/group' },
      ],
    ]);
    expect(await read('/etc/passwd')).toBe('real');
    expect(await read('/link/group')).toBe('base-group');
    expect(await read('/link/sub/f')).toBe('sub-f');
    await expect(read('/loop')).rejects.toThrow(/too many levels/);
    expect(await read('/hard')).toBe('base-group');
  });
  it('cleans paths', () => {
    expect(cleanPath('../../etc//passwd/')).toBe('/etc/passwd');
    expect(cleanPath('')).toBe('/');
  });
});

describe('openDecompressed', () => {
  it('sniffs gzip, zstd and plain tars', async () => {
    expect(sniffCompression(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(sniffCompression(Buffer.from('ustar'))).toBe('none');
    const dir = await mkdtemp(join(tmpdir(), 'berth-image-unit-'));
    try {
      const data = Buffer.from('hello world '.repeat(1000));
      await writeFile(join(dir, 'g'), gzipSync(data));
      await writeFile(join(dir, 'p'), data);
      for (const f of ['g', 'p']) {
        const chunks: Buffer[] = [];
        for await (const c of await openDecompressed(join(dir, f), 'x')) chunks.push(c as Buffer);
        expect(Buffer.concat(chunks).equals(data)).toBe(true);
      }
      await writeFile(
        join(dir, 'bad'),
        Buffer.concat([gzipSync(data).subarray(0, 100), Buffer.alloc(50, 7)]),
      );
      const s = await openDecompressed(join(dir, 'bad'), 'x');
      await expect(
        (async () => {
          for await (const _ of s) void _;
        })(),
      ).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
