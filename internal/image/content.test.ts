import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Status } from '../errors';
import { diskUsage } from '../snapshot/usage';
import { ContentStore, verifiedStream } from './content';

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const collect = async (r: Readable): Promise<Buffer> => {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
};

describe('verifiedStream', () => {
  it('passes matching data and fails a mismatch even when the consumer attaches late', async () => {
    const data = Buffer.from('layer bytes');
    const good = verifiedStream(Readable.from([data]), digestOf(data), 'x');
    await new Promise((r) => setTimeout(r, 20));
    expect((await collect(good.stream)).equals(data)).toBe(true);
    expect(good.verified()).toBe(true);

    const bad = verifiedStream(Readable.from([data]), digestOf(Buffer.from('other')), 'layer L (diff_id)');
    await new Promise((r) => setTimeout(r, 20));
    await expect(collect(bad.stream)).rejects.toMatchObject({
      code: Status.DATA_LOSS,
      message: expect.stringContaining('layer L (diff_id)'),
    });
    expect(bad.verified()).toBe(false);
  });
});

describe('ContentStore', () => {
  it('stores verified blobs and deletes the ingest file on a mismatch', async () => {
    const root = await mkdtemp(join(tmpdir(), 'berth-content-unit-'));
    try {
      const cs = new ContentStore(root);
      await cs.init();
      const data = Buffer.from('hello');
      await cs.ingest(digestOf(data), Readable.from([data]), { size: data.length });
      expect((await cs.read(digestOf(data))).toString()).toBe('hello');
      const wrong = digestOf(Buffer.from('x'));
      await expect(cs.ingest(wrong, Readable.from([data]))).rejects.toMatchObject({
        code: Status.DATA_LOSS,
        message: expect.stringContaining(wrong),
      });
      await expect(cs.ingest(digestOf(data), Readable.from([data]), { size: 3 })).rejects.toMatchObject({
        code: Status.DATA_LOSS,
      });
      expect(await readdir(cs.ingestDir)).toEqual([]);
      expect(await cs.has(wrong)).toBe(false);
      expect(await cs.list()).toEqual([digestOf(data)]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('keeps blob usage in memory: what a du of the content dir finds, across add, delete, restart', async () => {
    const root = await mkdtemp(join(tmpdir(), 'berth-content-unit-'));
    try {
      const cs = new ContentStore(root);
      await cs.init();
      const du = (): Promise<{ bytes: number; inodes: number }> => diskUsage(join(root, 'content'));
      expect(cs.usage()).toEqual(await du());
      const big = Buffer.alloc(200 * 1024, 3);
      const small = Buffer.from('small');
      await cs.ingest(digestOf(big), Readable.from([big]));
      await cs.put(digestOf(small), small);
      const two = cs.usage();
      expect(two).toEqual(await du());
      expect(two.bytes).toBeGreaterThanOrEqual(200 * 1024);
      await cs.delete(digestOf(big));
      expect(cs.usage().bytes).toBeLessThanOrEqual(two.bytes - 200 * 1024);
      expect(cs.usage()).toEqual(await du());
      // a new instance stats the blobs present once, at init
      const again = new ContentStore(root);
      await again.init();
      expect(again.usage()).toEqual(await du());
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

/** Runs `fn` on a fresh ContentStore in a temp dir, removed afterwards. */
async function withStore(fn: (cs: ContentStore, root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'berth-content-'));
  try {
    const cs = new ContentStore(root);
    await cs.init();
    await fn(cs, root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

describe('ContentStore.ingest with a tee', () => {
  it('the tee gets every byte and ends only after verification; a mismatch destroys it with DATA_LOSS', () =>
    withStore(async (cs, root) => {
      const data = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
      const tee = new PassThrough();
      const got = collect(tee);
      await cs.ingest(digestOf(data), Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
        size: data.length,
        tee,
      });
      expect((await got).equals(data)).toBe(true);
      expect(await cs.has(digestOf(data))).toBe(true);

      const bad = new PassThrough();
      const badGot = collect(bad).then(
        () => undefined,
        (e: unknown) => e,
      );
      const wrong = digestOf(Buffer.from('other'));
      await expect(cs.ingest(wrong, Readable.from([data]), { tee: bad })).rejects.toMatchObject({
        code: Status.DATA_LOSS,
      });
      expect(await badGot).toMatchObject({ code: Status.DATA_LOSS });
      expect(await cs.has(wrong)).toBe(false);
      expect(await readdir(join(root, 'content', 'ingest'))).toEqual([]);
    }));

  it('a source that fails while the ingest file opens fails the ingest (no unhandled error), leaving nothing', () =>
    withStore(async (cs, root) => {
      const src = new Readable({ read: () => undefined });
      process.nextTick(() => src.destroy(new Error('connection reset')));
      const tee = new PassThrough();
      tee.on('error', () => undefined);
      await expect(cs.ingest(digestOf(Buffer.from('x')), src, { tee })).rejects.toMatchObject({
        code: Status.UNAVAILABLE,
        message: expect.stringContaining('connection reset') as unknown,
      });
      expect(tee.destroyed).toBe(true);
      expect(await readdir(join(root, 'content', 'ingest'))).toEqual([]);
    }));

  it('stops reading its source when the ingest file cannot be made', () =>
    withStore(async (cs, root) => {
      await rm(join(root, 'content', 'ingest'), { recursive: true }); // open() fails: ENOENT
      const src = new Readable({ read: () => undefined });
      await expect(cs.ingest(digestOf(Buffer.from('x')), src)).rejects.toMatchObject({
        code: Status.UNAVAILABLE,
      });
      expect(src.destroyed).toBe(true);
    }));
});
