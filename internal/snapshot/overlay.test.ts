// OverlaySnapshotter bookkeeping: layer and snapshot lifecycle, crash leftovers, mount specs.
// Needs root and the native addon; the real overlay mount is in test/integration/snapshot.test.ts.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { makeTarSync, type TarEntry } from '../../test/lab/tar';
import { isBerthError, Status } from '../errors';
import { silentLogger } from '../log';
import { SnapshotError } from './errors';
import { MAX_MOUNT_DATA, OverlaySnapshotter } from './overlay';
import { diskUsage } from './usage';

const sha = (s: string): string => 'sha256:' + createHash('sha256').update(s).digest('hex');
const hexOf = (id: string): string => id.slice('sha256:'.length);
const tarStream = (entries: TarEntry[]): Readable => Readable.from([makeTarSync(entries)]);

let tmp: string;
let root: string;
let snap: OverlaySnapshotter;

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-snap-'));
  root = path.join(tmp, 'snapshots');
  snap = new OverlaySnapshotter({ root, log: silentLogger() });
  await snap.init();
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Applies n one-file layers in a chain and returns their chain IDs, lowest first. */
async function chain(n: number, tag = 'l'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = sha(`${tag}${i}`);
    await snap.applyLayer(id, ids[i - 1], tarStream([{ path: `f${i}`, content: `layer ${i}` }]));
    ids.push(id);
  }
  return ids;
}

const code = (err: unknown): Status | undefined => (isBerthError(err) ? err.code : undefined);

describe('OverlaySnapshotter', () => {
  it('applies a layer, records its size, and is idempotent', async () => {
    const id = sha('a');
    const info = await snap.applyLayer(
      id,
      undefined,
      tarStream([{ path: 'hello', content: 'x'.repeat(10000) }]),
    );
    expect(info.chainId).toBe(id);
    expect(info.inodes).toBe(2);
    expect(info.size).toBeGreaterThanOrEqual(12288);
    expect(await snap.hasLayer(id)).toBe(true);
    expect(await snap.listLayers()).toEqual([id]);
    expect(fs.readFileSync(path.join(root, 'layers', hexOf(id), 'fs', 'hello'), 'utf8')).toHaveLength(10000);

    const again = tarStream([{ path: 'other', content: 'y' }]);
    expect(await snap.applyLayer(id, undefined, again)).toEqual(info);
    expect(again.destroyed).toBe(true);
    expect(fs.existsSync(path.join(root, 'layers', hexOf(id), 'fs', 'other'))).toBe(false);
  });

  it('serialises concurrent applies of the same layer', async () => {
    const id = sha('same');
    const results = await Promise.all(
      [1, 2, 3].map((i) =>
        snap.applyLayer(id, undefined, tarStream([{ path: `f${i}`, content: String(i) }])),
      ),
    );
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([hexOf(id)]);
    expect(fs.readdirSync(path.join(root, 'layers', hexOf(id), 'fs'))).toEqual(['f1']);
    expect(fs.readdirSync(path.join(root, 'l'))).toHaveLength(1);
  });

  it('leaves nothing behind when a layer is hostile', async () => {
    const err = await snap
      .applyLayer(
        sha('evil'),
        undefined,
        tarStream([
          { path: 'ok', content: 'x' },
          { path: '../evil', content: 'x' },
        ]),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotError);
    expect(code(err)).toBe(Status.INVALID_ARGUMENT);
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'l'))).toEqual([]);
    expect(fs.existsSync(path.join(root, 'layers', 'evil'))).toBe(false);
    expect(await snap.hasLayer(sha('evil'))).toBe(false);
  });

  it('validates chain IDs and requires the parent layer', async () => {
    const s = tarStream([]);
    await expect(snap.applyLayer('sha256:nothex', undefined, s)).rejects.toThrow(/invalid layer chain ID/);
    expect(s.destroyed).toBe(true);
    const err = await snap.applyLayer(sha('child'), sha('missing'), tarStream([])).catch((e: unknown) => e);
    expect(code(err)).toBe(Status.FAILED_PRECONDITION);
  });

  it('stages layers in parallel out of sight and commits them in order', async () => {
    const [a, b] = [sha('stage-a'), sha('stage-b')];
    // the child unpacks first; neither is a layer until committed
    const [sb, sa] = await Promise.all([
      snap.stageLayer(b, tarStream([{ path: 'b', content: 'child' }])),
      snap.stageLayer(a, tarStream([{ path: 'a', content: 'parent' }])),
    ]);
    expect(await snap.listLayers()).toEqual([]);
    expect(await snap.hasLayer(b)).toBe(false);
    expect(fs.readdirSync(path.join(root, 'layers')).every((n) => n.includes('.tmp-'))).toBe(true);
    // a child whose parent is not committed is refused, and its staged dir goes
    const early = await snap.stageLayer(b, tarStream([{ path: 'b', content: 'early' }]));
    expect(code(await early.commit(a).catch((e: unknown) => e))).toBe(Status.FAILED_PRECONDITION);
    await sa.commit(undefined);
    const info = await sb.commit(a);
    expect(info.chainId).toBe(b);
    expect(fs.readdirSync(path.join(root, 'layers')).sort()).toEqual([hexOf(a), hexOf(b)].sort());
    expect(fs.readFileSync(path.join(root, 'layers', hexOf(b), 'fs', 'b'), 'utf8')).toBe('child');
    const meta = JSON.parse(fs.readFileSync(path.join(root, 'layers', hexOf(b), 'meta.json'), 'utf8'));
    expect(meta.parent).toBe(a);
    await expect(sb.commit(a)).rejects.toThrow(/already committed/);
    // a second copy of an existing layer is dropped at commit; a discarded one leaves nothing
    const dup = await snap.stageLayer(a, tarStream([{ path: 'other', content: 'x' }]));
    expect(await dup.commit(undefined)).toEqual(await snap.applyLayer(a, undefined, tarStream([])));
    const gone = await snap.stageLayer(sha('stage-c'), tarStream([{ path: 'c', content: 'c' }]));
    await gone.discard();
    expect(fs.readdirSync(path.join(root, 'layers')).sort()).toEqual([hexOf(a), hexOf(b)].sort());
    expect(fs.readdirSync(path.join(root, 'l'))).toHaveLength(2);
    // a staged layer left by a crash is removed at init
    await snap.stageLayer(sha('stage-d'), tarStream([{ path: 'd', content: 'd' }]));
    const again = new OverlaySnapshotter({ root, log: silentLogger() });
    await again.init();
    expect(fs.readdirSync(path.join(root, 'layers')).sort()).toEqual([hexOf(a), hexOf(b)].sort());
  });

  it('a hostile staged layer leaves nothing behind', async () => {
    const err = await snap
      .stageLayer(sha('evil2'), tarStream([{ path: '../evil', content: 'x' }]))
      .catch((e: unknown) => e);
    expect(code(err)).toBe(Status.INVALID_ARGUMENT);
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([]);
  });

  it('prepares a snapshot with the top-most layer first in lowerdir', async () => {
    const ids = await chain(3);
    const spec = await snap.prepare('c1', ids);
    expect(spec.type).toBe('overlay');
    const lower = spec.options
      .find((o) => o.startsWith('lowerdir='))!
      .slice('lowerdir='.length)
      .split(':');
    expect(lower).toHaveLength(3);
    const targets = lower.map((l) => fs.realpathSync(l));
    expect(targets).toEqual([...ids].reverse().map((id) => path.join(root, 'layers', hexOf(id), 'fs')));
    expect(spec.options).toContain(`upperdir=${path.join(root, 'snapshots', 'c1', 'upper')}`);
    expect(spec.options).toContain(`workdir=${path.join(root, 'snapshots', 'c1', 'work')}`);
    expect(await snap.mounts('c1')).toEqual(spec);
    expect(await snap.info('c1')).toEqual({
      key: 'c1',
      parents: ids,
      upperDir: path.join(root, 'snapshots', 'c1', 'upper'),
      workDir: path.join(root, 'snapshots', 'c1', 'work'),
    });
    expect((await snap.list()).map((s) => s.key)).toEqual(['c1']);
    expect(await snap.layersInUse()).toEqual(new Set(ids));
  });

  it('refuses duplicate keys, bad keys, missing layers and broken chains', async () => {
    const ids = await chain(2);
    await snap.prepare('c1', ids);
    expect(code(await snap.prepare('c1', ids).catch((e: unknown) => e))).toBe(Status.ALREADY_EXISTS);
    expect(code(await snap.prepare('../x', ids).catch((e: unknown) => e))).toBe(Status.INVALID_ARGUMENT);
    expect(code(await snap.prepare('a.tmp-b', ids).catch((e: unknown) => e))).toBe(Status.INVALID_ARGUMENT);
    expect(code(await snap.prepare('c2', [sha('nope')]).catch((e: unknown) => e))).toBe(Status.NOT_FOUND);
    expect(code(await snap.prepare('c3', [ids[1]!]).catch((e: unknown) => e))).toBe(
      Status.FAILED_PRECONDITION,
    );
    expect(code(await snap.prepare('c4', [ids[1]!, ids[0]!]).catch((e: unknown) => e))).toBe(
      Status.FAILED_PRECONDITION,
    );
    expect((await snap.list()).map((s) => s.key)).toEqual(['c1']);
    expect(fs.readdirSync(path.join(root, 'snapshots'))).toEqual(['c1']);
  });

  it('gives a bind mount of the upper dir when there are no layers', async () => {
    const spec = await snap.prepare('scratch', []);
    expect(spec).toEqual({
      type: 'bind',
      source: path.join(root, 'snapshots', 'scratch', 'upper'),
      options: ['rbind', 'rw'],
    });
  });

  it('a read-only view mounts the layers alone: no upper dir, a bind for one layer, kept in use', async () => {
    const ids = await chain(3);
    const spec = await snap.prepare('v3', ids, { readOnly: true });
    expect(spec.type).toBe('overlay');
    expect(spec.options).toHaveLength(1);
    const lower = spec.options[0]!.slice('lowerdir='.length).split(':');
    expect(lower.map((l) => fs.realpathSync(l))).toEqual(
      [...ids].reverse().map((id) => path.join(root, 'layers', hexOf(id), 'fs')),
    );
    const one = await snap.prepare('v1', ids.slice(0, 1), { readOnly: true });
    expect(one.type).toBe('bind');
    expect(one.options).toEqual(['rbind', 'ro']);
    expect(fs.realpathSync(one.source)).toBe(path.join(root, 'layers', hexOf(ids[0]!), 'fs'));
    expect(await snap.prepare('v0', [], { readOnly: true })).toMatchObject({
      type: 'bind',
      options: ['rbind', 'ro'],
    });
    // the view's layers are in use like a container's: not removable, and the kind survives a reload
    expect(await snap.layersInUse()).toEqual(new Set(ids));
    expect(code(await snap.removeLayer(ids[2]!).catch((e: unknown) => e))).toBe(Status.FAILED_PRECONDITION);
    const again = new OverlaySnapshotter({ root, log: silentLogger() });
    await again.init();
    expect(await again.mounts('v3')).toEqual(spec);
    expect(await again.mounts('v1')).toEqual(one);
  });

  it('copies the top layer root owner and mode to the upper dir', async () => {
    const id = sha('rooted');
    await snap.applyLayer(
      id,
      undefined,
      tarStream([{ path: './', type: 'dir', mode: 0o750, uid: 12, gid: 34 }]),
    );
    await snap.prepare('c', [id]);
    const st = fs.lstatSync(path.join(root, 'snapshots', 'c', 'upper'));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([12, 34, 0o750]);
  });

  it('refuses to remove a layer in use, then removes it once the snapshot is gone', async () => {
    const ids = await chain(2);
    await snap.prepare('c1', ids);
    const err = await snap.removeLayer(ids[0]!).catch((e: unknown) => e);
    expect(code(err)).toBe(Status.FAILED_PRECONDITION);
    expect((err as Error).message).toMatch(/in use by snapshot\(s\) c1/);
    expect(await snap.hasLayer(ids[0]!)).toBe(true);

    await snap.remove('c1');
    await snap.remove('c1'); // idempotent
    expect(await snap.info('c1')).toBeUndefined();
    expect(await snap.layersInUse()).toEqual(new Set());
    for (const id of ids) await snap.removeLayer(id);
    await snap.removeLayer(ids[0]!); // idempotent
    expect(await snap.listLayers()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'layers'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'l'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'snapshots'))).toEqual([]);
  });

  it('measures snapshot and file system usage', async () => {
    const ids = await chain(2);
    await snap.prepare('c1', ids);
    // prepare() counts what it made: the empty upper dir
    expect(snap.cachedUsage('c1')?.inodes).toBe(1);
    const empty = await snap.usage('c1');
    expect(empty.inodes).toBe(1);
    const upper = (await snap.info('c1'))!.upperDir;
    fs.writeFileSync(path.join(upper, 'data'), Buffer.alloc(64 * 1024, 1));
    fs.linkSync(path.join(upper, 'data'), path.join(upper, 'data2'));
    fs.mkdirSync(path.join(upper, 'd'));
    // the cached figure moves only when the walker (or usage()) measures again
    expect(snap.cachedUsage('c1')).toEqual(empty);
    const used = await snap.usage('c1');
    expect(used.inodes).toBe(3);
    expect(used.bytes).toBeGreaterThanOrEqual(empty.bytes + 64 * 1024);
    expect(used.bytes).toBeLessThan(empty.bytes + 2 * 64 * 1024); // the hardlink counts once
    expect(snap.cachedUsage('c1')).toEqual(used);

    const fsu = await snap.fsUsage();
    expect(fsu.mountpoint).toBe(root);
    expect(fsu.bytes).toBeGreaterThan(used.bytes);
    expect(fsu.inodes).toBeGreaterThanOrEqual(used.inodes + 4);
    await expect(snap.usage('nope')).rejects.toThrow(/not found/);
    expect(snap.cachedUsage('nope')).toBeUndefined();
  });

  it('fsUsage answers from memory what a du of the root finds', async () => {
    const ids = await chain(3);
    await snap.prepare('c1', ids);
    await snap.prepare('c2', ids.slice(0, 1));
    fs.writeFileSync(path.join((await snap.info('c2'))!.upperDir, 'big'), Buffer.alloc(300 * 1024, 7));
    await snap.refreshUsage();
    const du = await diskUsage(root);
    const fsu = await snap.fsUsage();
    expect(fsu.bytes).toBe(du.bytes);
    expect(fsu.inodes).toBe(du.inodes);
    // removing a snapshot and a layer takes their share off at once
    await snap.remove('c2');
    await snap.remove('c1');
    await snap.removeLayer(ids[2]!);
    const after = await snap.fsUsage();
    expect(after.bytes).toBeLessThan(fsu.bytes - 300 * 1024);
    await snap.refreshUsage();
    const du2 = await diskUsage(root);
    expect((await snap.fsUsage()).inodes).toBe(du2.inodes);
    expect(Math.abs((await snap.fsUsage()).bytes - du2.bytes)).toBeLessThanOrEqual(4096 * 4);
  });

  it('the background walker refreshes every snapshot, and a new one promptly', async () => {
    const ids = await chain(1);
    await snap.prepare('c1', ids);
    snap.startUsageRefresh(100);
    try {
      const upper = (await snap.info('c1'))!.upperDir;
      fs.writeFileSync(path.join(upper, 'f'), Buffer.alloc(128 * 1024, 1));
      const deadline = Date.now() + 5000;
      while ((snap.cachedUsage('c1')?.bytes ?? 0) < 128 * 1024 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(snap.cachedUsage('c1')?.inodes).toBe(2);
      await snap.prepare('c2', ids);
      expect(snap.cachedUsage('c2')?.inodes).toBe(1);
      await snap.remove('c1');
      expect(snap.cachedUsage('c1')).toBeUndefined();
    } finally {
      await snap.stopUsageRefresh();
    }
  });

  it('a layer whose meta.json has no size is measured once and the size written back', async () => {
    const [id] = await chain(1);
    const metaFile = path.join(root, 'layers', hexOf(id!), 'meta.json');
    const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Record<string, unknown>;
    const { size, inodes } = meta;
    delete meta.size;
    delete meta.inodes;
    fs.writeFileSync(metaFile, JSON.stringify(meta));
    const again = new OverlaySnapshotter({ root, log: silentLogger() });
    await again.init();
    await again.refreshUsage();
    const written = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Record<string, unknown>;
    expect(written.size).toBe(size);
    expect(written.inodes).toBe(inodes);
    expect((await again.fsUsage()).bytes).toBe((await diskUsage(root)).bytes);
  });

  it('reloads its state and cleans crash leftovers on init', async () => {
    const ids = await chain(2);
    await snap.prepare('c1', ids);
    // Leftovers of a crash: a half-applied layer, a half-removed one, a half-prepared snapshot,
    // a dangling short link.
    const half = path.join(root, 'layers', `${hexOf(sha('half'))}.tmp-abc123`);
    fs.mkdirSync(path.join(half, 'fs'), { recursive: true });
    fs.writeFileSync(path.join(half, 'fs', 'partial'), 'x');
    fs.mkdirSync(path.join(root, 'layers', `${hexOf(sha('gone'))}.tmp-rm-1`));
    fs.mkdirSync(path.join(root, 'snapshots', 'c2.tmp-def456', 'upper'), { recursive: true });
    fs.symlinkSync('../layers/nothing/fs', path.join(root, 'l', 'deadbeef00'));
    // A layer link removed by hand is recreated.
    const linkName = fs.readdirSync(path.join(root, 'l'))[0]!;
    fs.unlinkSync(path.join(root, 'l', linkName));

    const again = new OverlaySnapshotter({ root, log: silentLogger() });
    await again.init();
    expect(fs.readdirSync(path.join(root, 'layers')).sort()).toEqual(ids.map(hexOf).sort());
    expect(fs.readdirSync(path.join(root, 'snapshots'))).toEqual(['c1']);
    expect(fs.readdirSync(path.join(root, 'l'))).toHaveLength(2);
    expect(new Set(await again.listLayers())).toEqual(new Set(ids));
    expect(await again.layersInUse()).toEqual(new Set(ids));
    const spec = await again.mounts('c1');
    const lower = spec.options
      .find((o) => o.startsWith('lowerdir='))!
      .slice('lowerdir='.length)
      .split(':');
    for (const l of lower) expect(fs.existsSync(path.join(l, '.'))).toBe(true);
  });

  it('sets corrupt snapshot metadata aside and drops layers without metadata', async () => {
    const ids = await chain(1);
    await snap.prepare('c1', ids);
    fs.writeFileSync(path.join(root, 'snapshots', 'c1', 'meta.json'), '{broken');
    fs.rmSync(path.join(root, 'layers', hexOf(ids[0]!), 'meta.json'));
    const again = new OverlaySnapshotter({ root, log: silentLogger() });
    await again.init();
    expect(await again.list()).toEqual([]);
    expect(
      fs.readdirSync(path.join(root, 'snapshots', 'c1')).some((n) => n.startsWith('meta.json.corrupt-')),
    ).toBe(true);
    expect(await again.listLayers()).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'l'))).toEqual([]);
  });

  it('fits 60 layers in the mount options and refuses stacks over the page limit', async () => {
    const ids = await chain(60);
    const spec = await snap.prepare('many', ids);
    expect(spec.options.join(',').length).toBeLessThanOrEqual(MAX_MOUNT_DATA);

    // A long root eats the budget: 60 layers no longer fit.
    const longRoot = path.join(tmp, 'x'.repeat(200), 'y'.repeat(200), 'snapshots');
    const long = new OverlaySnapshotter({ root: longRoot, log: silentLogger() });
    await long.init();
    const longIds: string[] = [];
    for (let i = 0; i < 60; i++) {
      const id = sha(`long${i}`);
      await long.applyLayer(id, longIds[i - 1], tarStream([]));
      longIds.push(id);
    }
    const err = await long.prepare('many', longIds).catch((e: unknown) => e);
    expect(code(err)).toBe(Status.FAILED_PRECONDITION);
    expect((err as Error).message).toMatch(/over the kernel's 4095-byte limit/);
    expect(fs.readdirSync(path.join(longRoot, 'snapshots'))).toEqual([]);
  });

  it('rejects a root that would break mount option parsing', () => {
    expect(() => new OverlaySnapshotter({ root: '/tmp/a,b', log: silentLogger() })).toThrow(
      /must not contain/,
    );
    expect(() => new OverlaySnapshotter({ root: '/tmp/a:b', log: silentLogger() })).toThrow(
      /must not contain/,
    );
  });
});
