// The unpack pool with real worker threads (the built unpack-worker.js): a layer unpacks as it does
// in the calling thread, its errors keep their gRPC codes across the thread boundary, the pull's
// unpack budget is one count across threads, a failed source or a dead worker fails the job
// cleanly, and idle workers end.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { defaultConfig } from '../../internal/config/config';
import { BerthError, Status, isBerthError } from '../../internal/errors';
import { silentLogger } from '../../internal/log';
import { type UnpackLayerJob } from '../../internal/image/unpack-layer';
import { unpackBudget, unpackedSoFar } from '../../internal/image/unpack-limits';
import { CHUNK, MIN_WORKER_BYTES, UnpackPool } from '../../internal/image/unpack-pool';
import { sha256Digest } from '../lab/client';
import { builtUnpackWorker } from '../lab/image-store';
import { makeTarSync, type TarEntry } from '../lab/tar';

let tmp: string;
const pools: UnpackPool[] = [];

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-unpack-pool-'));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

function pool(
  workers: number,
  extra: { idleMs?: number; script?: string; minWorkerBytes?: number } = {},
): UnpackPool {
  const p = new UnpackPool({
    workers,
    log: silentLogger(),
    script: builtUnpackWorker(),
    minWorkerBytes: 0,
    ...extra,
  });
  pools.push(p);
  return p;
}

let n = 0;
function freshDir(): string {
  const d = path.join(tmp, `d${n++}`);
  fs.mkdirSync(d);
  return d;
}

interface Layer {
  gz: Buffer;
  job: UnpackLayerJob;
}

function layer(entries: TarEntry[], budget = unpackBudget(defaultConfig().image)): Layer {
  const tar = makeTarSync(entries);
  const gz = gzipSync(tar);
  return {
    gz,
    job: {
      diffId: sha256Digest(tar),
      what: 'layer L',
      label: 'layer L of test',
      compressedBytes: gz.length,
      budget,
    },
  };
}

/** `buf` as a stream of small chunks, as a download delivers it. */
function chunked(buf: Buffer, size = 16 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let o = 0; o < buf.length; o += size) parts.push(buf.subarray(o, o + size));
  return Readable.from(parts);
}

async function codeOf(p: Promise<unknown>): Promise<{ code: number | undefined; message: string }> {
  try {
    await p;
  } catch (err) {
    return { code: isBerthError(err) ? err.code : undefined, message: (err as Error).message };
  }
  throw new Error('expected a rejection');
}

const files: TarEntry[] = [
  { path: 'etc/', type: 'dir' },
  { path: 'etc/hostname', content: 'berth\n', mode: 0o644 },
  { path: 'bin/', type: 'dir' },
  { path: 'bin/big', content: Buffer.alloc(3 * 1024 * 1024, 7), mode: 0o755 },
  { path: 'bin/link', type: 'symlink', linkname: 'big' },
];

describe('unpack pool (worker threads)', () => {
  it('unpacks a layer in a worker as the calling thread does', async () => {
    const p = pool(1);
    expect(p.threaded).toBe(true);
    const l = layer(files);
    const inThread = freshDir();
    const inline = await new UnpackPool({ workers: 0, log: silentLogger() }).run(
      chunked(l.gz),
      inThread,
      l.job,
    );
    const inWorker = freshDir();
    const r = await p.run(chunked(l.gz), inWorker, l.job);
    expect(r).toEqual(inline);
    expect(r.bytes).toBe(makeTarSync(files).length);
    expect(fs.readFileSync(path.join(inWorker, 'etc/hostname'), 'utf8')).toBe('berth\n');
    expect(fs.statSync(path.join(inWorker, 'bin/big')).size).toBe(3 * 1024 * 1024);
    expect(fs.statSync(path.join(inWorker, 'bin/big')).mode & 0o7777).toBe(0o755);
    expect(fs.readlinkSync(path.join(inWorker, 'bin/link'))).toBe('big');
    expect(p.size).toBe(1);
  });

  it("hands a chunk's buffer back once gunzip is done with it, for the next chunks", async () => {
    const p = pool(1);
    const l = layer([{ path: 'noise', content: randomBytes(4 * CHUNK) }]);
    expect(l.gz.length).toBeGreaterThan(3 * CHUNK);
    expect((await p.run(chunked(l.gz), freshDir(), l.job)).bytes).toBeGreaterThan(4 * CHUNK);
    await new Promise((res) => setTimeout(res, 50)); // the last hand-backs are messages
    const spare = p.spareChunks;
    expect(spare).toBeGreaterThanOrEqual(3); // every whole 1 MiB chunk came back
    // the next layer is carried in them (a chunk is taken per MiB), and they come back again
    const dest = freshDir();
    expect((await p.run(chunked(l.gz), dest, l.job)).bytes).toBeGreaterThan(4 * CHUNK);
    expect(fs.statSync(path.join(dest, 'noise')).size).toBe(4 * CHUNK);
    await new Promise((res) => setTimeout(res, 50));
    expect(p.spareChunks).toBe(spare);
  });

  it('keeps the gRPC code of a layer error: a wrong diff_id, a corrupt gzip, a hostile tar', async () => {
    const p = pool(1);
    const l = layer(files);
    const bad = { ...l.job, diffId: `sha256:${'0'.repeat(64)}` };
    const mismatch = await codeOf(p.run(chunked(l.gz), freshDir(), bad));
    expect(mismatch.code).toBe(Status.DATA_LOSS);
    expect(mismatch.message).toContain('layer L (diff_id)');

    const corrupt = Buffer.from(l.gz);
    corrupt.fill(0xff, 10, 30); // right after the gzip header: an invalid deflate block type
    const c = await codeOf(p.run(chunked(corrupt), freshDir(), l.job));
    expect(c.code).toBe(Status.DATA_LOSS);
    expect(c.message).toContain('layer L cannot be decompressed');

    const evil = layer([{ path: '../escape', content: 'x' }]);
    const dest = freshDir();
    const e = await codeOf(p.run(chunked(evil.gz), dest, evil.job));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toMatch(/escapes the layer root/);
    expect(fs.existsSync(path.join(dest, '..', 'escape'))).toBe(false);
    // the worker is still good for the next layer
    expect((await p.run(chunked(l.gz), freshDir(), l.job)).bytes).toBeGreaterThan(0);
  });

  it("counts every thread's bytes against one per-image bound", async () => {
    const config = defaultConfig().image;
    config.max_image_uncompressed_bytes = 5 * 1024 * 1024;
    const budget = unpackBudget(config);
    const big = (i: number): TarEntry[] => [{ path: `f${i}`, content: Buffer.alloc(3 * 1024 * 1024, i) }];
    const a = layer(big(1), budget);
    const b = layer(big(2), budget);
    const p = pool(2);
    const results = await Promise.allSettled([
      p.run(chunked(a.gz), freshDir(), a.job),
      p.run(chunked(b.gz), freshDir(), b.job),
    ]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) {
      const err = (r as PromiseRejectedResult).reason as Error;
      expect(isBerthError(err, Status.RESOURCE_EXHAUSTED)).toBe(true);
      expect(err.message).toContain('per-image limit');
    }
    expect(unpackedSoFar(budget)).toBeGreaterThan(5 * 1024 * 1024);
  });

  it("fails the job with the source's error when the download fails midway or before the job", async () => {
    const p = pool(1);
    const l = layer(files);
    const src = new PassThrough();
    const job = p.run(src, freshDir(), l.job);
    src.write(l.gz.subarray(0, 4096));
    setTimeout(() => src.destroy(new BerthError(Status.UNAVAILABLE, 'registry went away')), 50);
    const r = await codeOf(job);
    expect(r.code).toBe(Status.UNAVAILABLE);
    expect(r.message).toBe('registry went away');
    expect((await p.run(chunked(l.gz), freshDir(), l.job)).bytes).toBeGreaterThan(0);

    // a source that failed, or closed early, before the job began (a small layer's download can be
    // over before its dir exists): it emits nothing more, and the job must still end
    const failed = new PassThrough();
    failed.on('error', () => undefined);
    failed.destroy(new BerthError(Status.DATA_LOSS, 'blob failed verification'));
    await new Promise((res) => setImmediate(res));
    expect(await codeOf(p.run(failed, freshDir(), l.job))).toEqual({
      code: Status.DATA_LOSS,
      message: 'blob failed verification',
    });
    const closed = new PassThrough();
    closed.destroy();
    await new Promise((res) => setImmediate(res));
    expect((await codeOf(p.run(closed, freshDir(), l.job))).message).toContain(
      'the layer stream closed before its end',
    );
  });

  it('fails the job with INTERNAL when its worker dies, and forgets that worker', async () => {
    const script = path.join(tmp, 'dies.js');
    fs.writeFileSync(
      script,
      "require('node:worker_threads').parentPort.on('message', (m) => { if (m.type === 'start') process.exit(3); });\n",
    );
    const p = pool(1, { script });
    const l = layer(files);
    const r = await codeOf(p.run(chunked(l.gz), freshDir(), l.job));
    expect(r.code).toBe(Status.INTERNAL);
    expect(r.message).toBe('unpack worker exited with code 3');
    await new Promise((res) => setTimeout(res, 50));
    expect(p.size).toBe(0);
  });

  it('unpacks a layer under the small-layer bound in the calling thread, without a worker', async () => {
    const p = pool(1, { minWorkerBytes: MIN_WORKER_BYTES });
    const l = layer(files);
    expect(l.gz.length).toBeLessThan(MIN_WORKER_BYTES);
    const dest = freshDir();
    expect((await p.run(chunked(l.gz), dest, l.job)).bytes).toBe(makeTarSync(files).length);
    expect(fs.readFileSync(path.join(dest, 'etc/hostname'), 'utf8')).toBe('berth\n');
    expect(p.size).toBe(0);
  });

  it('ends idle workers', async () => {
    const p = pool(2, { idleMs: 100 });
    const l = layer(files);
    await Promise.all([p.run(chunked(l.gz), freshDir(), l.job), p.run(chunked(l.gz), freshDir(), l.job)]);
    expect(p.size).toBe(2);
    await new Promise((res) => setTimeout(res, 400));
    expect(p.size).toBe(0);
  });
});
