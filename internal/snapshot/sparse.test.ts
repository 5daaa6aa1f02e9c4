// Sparse layer files: long zero runs and GNU sparse entries (PAX 0.0, 0.1, 1.0, made by the real
// GNU tar) become holes, and the files read back byte for byte. Needs root like apply.test.ts.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { Status } from '../errors';
import { makeTarSync } from '../../test/lab/tar';
import { applyLayerTar } from './apply';
import { HOLE_MIN, HoleWriter, paxSparse } from './sparse';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-sparse-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const allocated = (p: string): number => fs.statSync(p).blocks * 512;

/** 8 MiB: data, 3 MiB of zeros, data, a short zero run, data, zeros to the end. */
function zeroRich(): Buffer {
  const b = Buffer.alloc(8 * 1024 * 1024);
  b.fill(7, 0, 100_000);
  b.fill(9, 3_200_000, 3_300_000);
  b.fill(5, 3_300_000 + 1000, 3_400_000); // a 1000-byte zero run stays data
  return b;
}

describe('HoleWriter', () => {
  it('writes what it gets, leaving long zero runs as holes, in any chunking', async () => {
    const data = zeroRich();
    for (const size of [1000, 4096, 65536, 1 << 20, data.length]) {
      const f = path.join(tmp, `f${size}`);
      const fd = fs.openSync(f, 'w');
      const w = new HoleWriter(fd);
      for (let o = 0; o < data.length; o += size) await w.write(data.subarray(o, o + size));
      await w.finish(w.offset);
      fs.closeSync(fd);
      const back = fs.readFileSync(f);
      expect(back.length).toBe(data.length);
      expect(sha(back)).toBe(sha(data));
      expect(allocated(f)).toBeLessThan(1024 * 1024);
      expect(w.holeBytes).toBeGreaterThan(7 * 1024 * 1024);
    }
  });

  it('short zero runs are written (no hole below HOLE_MIN)', async () => {
    const f = path.join(tmp, 'short');
    const fd = fs.openSync(f, 'w');
    const w = new HoleWriter(fd);
    await w.write(Buffer.concat([Buffer.alloc(10, 1), Buffer.alloc(HOLE_MIN - 1), Buffer.alloc(10, 2)]));
    await w.finish(w.offset);
    fs.closeSync(fd);
    expect(w.holeBytes).toBe(0);
    expect(fs.readFileSync(f).length).toBe(HOLE_MIN + 19);
  });
});

describe('applyLayerTar and sparse files', () => {
  it('a regular tar entry full of zeros lands sparse (old code wrote every zero)', async () => {
    const data = zeroRich();
    const dest = path.join(tmp, 'fs');
    fs.mkdirSync(dest);
    await applyLayerTar(dest, Readable.from([makeTarSync([{ path: 'disk.img', content: data }])]));
    const f = path.join(dest, 'disk.img');
    expect(sha(fs.readFileSync(f))).toBe(sha(data));
    expect(allocated(f)).toBeLessThan(1024 * 1024);
  });

  const gnuTar = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar');
  (gnuTar ? it : it.skip).each(['0.0', '0.1', '1.0'])(
    'GNU tar PAX sparse %s entries are unpacked sparse',
    async (v) => {
      const src = path.join(tmp, 'src');
      fs.mkdirSync(src);
      const big = path.join(src, 'sparse.bin');
      const fd = fs.openSync(big, 'w');
      fs.writeSync(fd, Buffer.alloc(5000, 1), 0, 5000, 10 * 1024 * 1024);
      fs.writeSync(fd, Buffer.from('head'), 0, 4, 0);
      fs.ftruncateSync(fd, 64 * 1024 * 1024);
      fs.closeSync(fd);
      fs.writeFileSync(path.join(src, 'plain.txt'), 'plain');
      const tarFile = path.join(tmp, 'l.tar');
      const r = spawnSync('tar', [
        '--format=posix',
        '--sparse',
        `--sparse-version=${v}`,
        '-C',
        src,
        '-cf',
        tarFile,
        '.',
      ]);
      expect(r.status).toBe(0);
      const dest = path.join(tmp, 'fs');
      fs.mkdirSync(dest);
      await applyLayerTar(dest, fs.createReadStream(tarFile), { maxFileBytes: 1 << 30 });
      expect(fs.readdirSync(dest).sort()).toEqual(['plain.txt', 'sparse.bin']);
      const out = path.join(dest, 'sparse.bin');
      expect(fs.statSync(out).size).toBe(64 * 1024 * 1024);
      expect(sha(fs.readFileSync(out))).toBe(sha(fs.readFileSync(big)));
      expect(allocated(out)).toBeLessThan(1024 * 1024);
      expect(fs.readFileSync(path.join(dest, 'plain.txt'), 'utf8')).toBe('plain');

      // a sparse file whose apparent size passes the limit is refused
      const dest2 = path.join(tmp, 'fs2');
      fs.mkdirSync(dest2);
      const err = await applyLayerTar(dest2, fs.createReadStream(tarFile), { maxFileBytes: 1 << 20 }).catch(
        (e: unknown) => e as { code: number; message: string },
      );
      expect(err).toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
      expect((err as unknown as Error).message).toMatch(/sparse\.bin' is a sparse file of 67108864 bytes/);
    },
  );

  (gnuTar ? it : it.skip)('old-GNU sparse entries (type S) are refused as an unsupported type', async () => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    const fd = fs.openSync(path.join(src, 's.bin'), 'w');
    fs.writeSync(fd, Buffer.from('x'), 0, 1, 4 * 1024 * 1024);
    fs.closeSync(fd);
    const tarFile = path.join(tmp, 'gnu.tar');
    expect(spawnSync('tar', ['--format=gnu', '--sparse', '-C', src, '-cf', tarFile, 's.bin']).status).toBe(0);
    const dest = path.join(tmp, 'fs');
    fs.mkdirSync(dest);
    const err = await applyLayerTar(dest, fs.createReadStream(tarFile)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect((err as Error).message).toMatch(/'s\.bin' has an unsupported type \(old-GNU sparse/);
  });

  it('paxSparse refuses bad maps', () => {
    expect(paxSparse({ path: 'x' })).toBeUndefined();
    expect(() => paxSparse({ 'GNU.sparse.map': '1,2,3', 'GNU.sparse.size': '10' })).toThrow(/odd/);
    expect(() => paxSparse({ 'GNU.sparse.major': '2', 'GNU.sparse.minor': '0' })).toThrow(/unsupported/);
    expect(
      paxSparse({ 'GNU.sparse.map': '0,5,100,5', 'GNU.sparse.size': '105', 'GNU.sparse.name': 'n' }),
    ).toEqual({
      name: 'n',
      realSize: 105,
      map: [
        [0, 5],
        [100, 5],
      ],
    });
  });
});
