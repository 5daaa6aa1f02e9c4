// Id-mapped layer copies: the pure mapping helpers, and the snapshotter's mapped snapshots (owners
// shifted, originals untouched, hard links / setuid / whiteouts / opaque dirs kept, cache freed with
// the last snapshot). Needs root and the native addon.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { makeTarSync, type TarEntry } from '../../test/lab/tar';
import { silentLogger } from '../log';
import { native } from '../util/native';
import { checkIdMap, mappedKey, OVERFLOW_ID, remapFileCaps, sameIdMap, toHost, type IdMap } from './idmap';
import { OverlaySnapshotter } from './overlay';

const sha = (s: string): string => 'sha256:' + createHash('sha256').update(s).digest('hex');
const tarStream = (entries: TarEntry[]): Readable => Readable.from([makeTarSync(entries)]);
const MAP: IdMap = {
  uids: [{ containerID: 0, hostID: 100000, size: 65536 }],
  gids: [{ containerID: 0, hostID: 200000, size: 65536 }],
};

describe('id mapping helpers', () => {
  it('maps ids into the host range and unmapped ones to the overflow id', () => {
    expect(toHost(0, MAP.uids)).toBe(100000);
    expect(toHost(1000, MAP.uids)).toBe(101000);
    expect(toHost(65535, MAP.uids)).toBe(165535);
    expect(toHost(65536, MAP.uids)).toBe(OVERFLOW_ID);
    const two = [
      { containerID: 0, hostID: 5000, size: 1 },
      { containerID: 1, hostID: 300000, size: 10 },
    ];
    expect(toHost(0, two)).toBe(5000);
    expect(toHost(3, two)).toBe(300002);
  });

  it('refuses empty, zero-sized, overlapping and overflowing mappings', () => {
    expect(() => checkIdMap(MAP)).not.toThrow();
    expect(() => checkIdMap({ uids: [], gids: MAP.gids })).toThrow(/uids is empty/);
    expect(() => checkIdMap({ uids: [{ containerID: 0, hostID: 1, size: 0 }], gids: MAP.gids })).toThrow(
      /invalid/,
    );
    expect(() =>
      checkIdMap({
        uids: [
          { containerID: 0, hostID: 100000, size: 10 },
          { containerID: 5, hostID: 300000, size: 10 },
        ],
        gids: MAP.gids,
      }),
    ).toThrow(/overlap on the containerID side/);
    expect(() =>
      checkIdMap({ uids: [{ containerID: 0, hostID: 0xffffff00, size: 65536 }], gids: MAP.gids }),
    ).toThrow(/2\^32/);
  });

  it('names a (layer, mapping) pair stably and distinctly', () => {
    expect(mappedKey(sha('a'), MAP)).toBe(mappedKey(sha('a'), structuredClone(MAP)));
    expect(mappedKey(sha('a'), MAP)).not.toBe(mappedKey(sha('b'), MAP));
    const other = { ...MAP, gids: MAP.uids };
    expect(mappedKey(sha('a'), MAP)).not.toBe(mappedKey(sha('a'), other));
    expect(sameIdMap(MAP, structuredClone(MAP))).toBe(true);
    expect(sameIdMap(MAP, other)).toBe(false);
    expect(sameIdMap(undefined, undefined)).toBe(true);
  });

  it('rewrites file capabilities as v3 owned by the mapped root', () => {
    const v2 = Buffer.alloc(20);
    v2.writeUInt32LE(0x02000001, 0); // revision 2, effective
    v2.writeUInt32LE(0x2000, 4); // CAP_NET_RAW permitted
    const v3 = remapFileCaps(v2, MAP.uids)!;
    expect(v3).toHaveLength(24);
    expect(v3.readUInt32LE(0)).toBe(0x03000001);
    expect(v3.readUInt32LE(4)).toBe(0x2000);
    expect(v3.readUInt32LE(20)).toBe(100000);
    expect(remapFileCaps(Buffer.alloc(8), MAP.uids)).toBeUndefined();
  });
});

describe('OverlaySnapshotter with an id mapping', () => {
  let tmp: string;
  let root: string;
  let snap: OverlaySnapshotter;

  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-idmap-'));
    root = path.join(tmp, 'snapshots');
    snap = new OverlaySnapshotter({ root, log: silentLogger() });
    await snap.init();
  });

  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function layers(): Promise<string[]> {
    const base = sha('base');
    await snap.applyLayer(
      base,
      undefined,
      tarStream([
        { path: 'etc/', type: 'dir', mode: 0o755 },
        { path: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644 },
        { path: 'home/user/', type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
        { path: 'home/user/f', content: 'u', uid: 1000, gid: 1000 },
        { path: 'bin/su', content: 'suid', mode: 0o4755 },
        { path: 'bin/ping', content: 'ping', mode: 0o755 },
        { path: 'bin/link', type: 'hardlink', linkname: 'bin/ping' },
        { path: 'bin/sym', type: 'symlink', linkname: 'ping' },
        { path: 'far', content: 'x', uid: 70000, gid: 70000 },
        { path: 'gone/', type: 'dir' },
        { path: 'gone/x', content: 'x' },
      ]),
    );
    const top = sha('top');
    await snap.applyLayer(
      top,
      base,
      tarStream([
        { path: 'gone/', type: 'dir' },
        { path: 'gone/.wh..wh..opq', content: '' },
        { path: 'etc/.wh.passwd', content: '' },
      ]),
    );
    return [base, top];
  }

  it('stacks the snapshot on shifted copies and leaves the layers alone', async () => {
    const ids = await layers();
    // a file capability on bin/ping, set on the original (v2: "host root")
    const v2 = Buffer.alloc(20);
    v2.writeUInt32LE(0x02000001, 0);
    v2.writeUInt32LE(0x2000, 4);
    const origPing = path.join(root, 'layers', ids[0].slice(7), 'fs', 'bin', 'ping');
    native().lsetxattr(origPing, 'security.capability', v2);

    const spec = await snap.prepare('c1', ids, { idmap: MAP });
    expect(spec.type).toBe('overlay');
    const lower = spec.options
      .find((o) => o.startsWith('lowerdir='))!
      .slice('lowerdir='.length)
      .split(':');
    const [topDir, baseDir] = lower.map((l) => fs.realpathSync(l));
    expect(baseDir).toBe(path.join(root, 'mapped', mappedKey(ids[0], MAP), 'fs'));
    expect(topDir).toBe(path.join(root, 'mapped', mappedKey(ids[1], MAP), 'fs'));

    const st = (p: string): fs.Stats => fs.lstatSync(path.join(baseDir, p));
    expect([st('.').uid, st('.').gid]).toEqual([100000, 200000]);
    expect([st('etc/passwd').uid, st('etc/passwd').gid]).toEqual([100000, 200000]);
    expect([st('home/user/f').uid, st('home/user').gid]).toEqual([101000, 201000]);
    expect(st('home/user').mode & 0o7777).toBe(0o700);
    expect(st('bin/su').mode & 0o7777).toBe(0o4755);
    expect(st('bin/sym').isSymbolicLink()).toBe(true);
    expect(st('bin/sym').uid).toBe(100000);
    expect(st('bin/link').ino).toBe(st('bin/ping').ino);
    expect(st('far').uid).toBe(OVERFLOW_ID);
    const caps = native().lgetxattr(path.join(baseDir, 'bin/ping'), 'security.capability')!;
    expect(caps.readUInt32LE(0) >>> 24).toBe(3);
    expect(caps.readUInt32LE(20)).toBe(100000);
    // whiteouts and the opaque marker survive the copy
    const wh = fs.lstatSync(path.join(topDir, 'etc/passwd'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.uid).toBe(100000);
    expect(native().lgetxattr(path.join(topDir, 'gone'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    // the upper dir (the merged root) belongs to the mapped root
    const info = (await snap.info('c1'))!;
    expect(fs.lstatSync(info.upperDir).uid).toBe(100000);
    // the originals are untouched
    expect(fs.lstatSync(origPing).uid).toBe(0);
    expect(fs.lstatSync(path.join(root, 'layers', ids[0].slice(7), 'fs', 'home/user/f')).uid).toBe(1000);
    // mounts() answers the same stack
    expect(await snap.mounts('c1')).toEqual(spec);
  });

  it('shares copies between snapshots of one mapping and frees them with the last one', async () => {
    const ids = await layers();
    await snap.prepare('c1', ids, { idmap: MAP });
    await snap.prepare('c2', ids, { idmap: MAP });
    await snap.prepare('plain', ids);
    const mappedDir = path.join(root, 'mapped');
    expect(fs.readdirSync(mappedDir).sort()).toEqual(ids.map((i) => mappedKey(i, MAP)).sort());
    const links = fs.readdirSync(path.join(root, 'l')).length;
    expect(links).toBe(4);

    // a restart keeps copies that snapshots stand on
    const again = new OverlaySnapshotter({ root, log: silentLogger() });
    await again.init();
    expect(fs.readdirSync(mappedDir)).toHaveLength(2);
    expect(fs.readdirSync(path.join(root, 'l'))).toHaveLength(4);

    await again.remove('c1');
    expect(fs.readdirSync(mappedDir)).toHaveLength(2);
    await again.remove('c2');
    expect(fs.readdirSync(mappedDir)).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'l'))).toHaveLength(2);
    // the plain snapshot still mounts
    expect((await again.mounts('plain')).type).toBe('overlay');
  });

  it('drops orphaned copies at start and refuses a bad mapping before any work', async () => {
    const ids = await layers();
    await snap.prepare('c1', ids, { idmap: MAP });
    // simulate a crash after the snapshot went away but before its copies did
    fs.rmSync(path.join(root, 'snapshots', 'c1'), { recursive: true });
    const again = new OverlaySnapshotter({ root, log: silentLogger() });
    await again.init();
    expect(fs.readdirSync(path.join(root, 'mapped'))).toEqual([]);
    await expect(again.prepare('c2', ids, { idmap: { uids: [], gids: MAP.gids } })).rejects.toThrow(
      /uids is empty/,
    );
    expect(await again.info('c2')).toBeUndefined();
  });
});
