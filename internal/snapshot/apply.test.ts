// Layer apply: metadata fidelity, whiteouts, replacement, and hostile tars. Needs root (chown,
// mknod, trusted.* xattrs) and the native addon (npm run build:native).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { makeTarSync, type TarEntry } from '../../test/lab/tar';
import { native } from '../util/native';
import { applyLayerTar, cleanEntryPath, decodePax } from './apply';
import { SnapshotError } from './errors';

const T1 = new Date('2021-03-04T05:06:07Z');
const T2 = new Date('2020-01-02T03:04:05Z');
const secs = (d: Date): number => d.getTime() / 1000;

let tmp: string;
let dest: string;
let outside: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-apply-'));
  dest = path.join(tmp, 'root', 'fs');
  fs.mkdirSync(dest, { recursive: true });
  outside = path.join(tmp, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'secret'), 'keep out');
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const apply = (entries: TarEntry[] | Buffer): ReturnType<typeof applyLayerTar> =>
  applyLayerTar(dest, Readable.from([Array.isArray(entries) ? makeTarSync(entries) : entries]));

/** Everything under tmp outside the layer, with content, so a stray write shows up. */
function outsideSnapshot(): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (p === dest) continue;
      const st = fs.lstatSync(p);
      out.push(
        `${path.relative(tmp, p)} ${st.mode.toString(8)} ${st.nlink} ${st.isFile() ? fs.readFileSync(p, 'utf8') : ''}`,
      );
      if (st.isDirectory()) walk(p);
    }
  };
  walk(tmp);
  return out;
}

describe('cleanEntryPath', () => {
  it('cleans names and drops a leading slash', () => {
    expect(cleanEntryPath('./a/b/')).toEqual(['a', 'b']);
    expect(cleanEntryPath('/abs//x/./y')).toEqual(['abs', 'x', 'y']);
    expect(cleanEntryPath('a/../b')).toEqual(['b']);
    expect(cleanEntryPath('./')).toEqual([]);
  });
  it('rejects escapes and NUL', () => {
    expect(() => cleanEntryPath('../evil')).toThrow(/escapes the layer root/);
    expect(() => cleanEntryPath('a/../../evil')).toThrow(/escapes/);
    expect(() => cleanEntryPath('/../evil')).toThrow(/escapes/);
    expect(() => cleanEntryPath('a\0b')).toThrow(/NUL/);
  });
});

describe('decodePax', () => {
  it('keeps xattr values as raw bytes', () => {
    const rec = Buffer.concat([
      Buffer.from('27 SCHILY.xattr.user.b='),
      Buffer.from([0xff, 0x00, 0x80]),
      Buffer.from('\n'),
    ]);
    const body = Buffer.concat([rec, Buffer.from('12 path=x/y\n')]);
    const pax = decodePax(body);
    expect(pax.path).toBe('x/y');
    expect(pax['SCHILY.xattr.user.b']).toBeDefined();
  });
  it('rejects malformed records', () => {
    expect(() => decodePax(Buffer.from('99 path=x\n'))).toThrow(/malformed/);
    expect(() => decodePax(Buffer.from('abc'))).toThrow(/malformed/);
  });
});

describe('applyLayerTar', () => {
  it('lets other callbacks run while it applies a tar that is already in memory', async () => {
    // 3000 symlinks and dirs: metadata calls only, which are synchronous; without the slicing the
    // whole apply ran in one stretch of microtasks and no timer or I/O callback got a turn
    const entries: TarEntry[] = [];
    for (let i = 0; i < 1500; i++) {
      entries.push({ path: `d${i}/`, type: 'dir' });
      entries.push({ path: `d${i}/l`, type: 'symlink', linkname: '../x' });
    }
    const tar = makeTarSync(entries);
    let turns = 0;
    let on = true;
    const tick = (): void => {
      turns++;
      if (on) setImmediate(tick);
    };
    setImmediate(tick);
    await applyLayerTar(dest, Readable.from([tar]));
    on = false;
    const during = turns;
    expect(fs.readlinkSync(path.join(dest, 'd1499', 'l'))).toBe('../x');
    expect(during).toBeGreaterThan(1);
  });

  it('preserves files, dirs, modes, owners, times, links, devices and xattrs', async () => {
    const res = await apply([
      { path: 'dir/', type: 'dir', mode: 0o750, uid: 1000, gid: 1001, mtime: T1 },
      { path: 'dir/file', content: 'hello', mode: 0o640, uid: 1002, gid: 1003, mtime: T2 },
      { path: 'suid', content: '#!/bin/sh\n', mode: 0o4755, uid: 0, gid: 0, mtime: T1 },
      { path: 'sgid', content: 'x', mode: 0o2711, uid: 5, gid: 6 },
      { path: 'tmp/', type: 'dir', mode: 0o1777 },
      { path: 'link', type: 'symlink', linkname: '/etc/passwd', uid: 7, gid: 8, mtime: T2 },
      { path: 'hard', type: 'hardlink', linkname: 'dir/file' },
      { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { path: 'dev/loop0', type: 'block', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { path: 'fifo', type: 'fifo', mode: 0o600 },
      {
        path: 'xa',
        content: '',
        pax: { 'SCHILY.xattr.user.greeting': 'hi there', 'SCHILY.xattr.trusted.berth': 'QQQQ' },
      },
      { path: 'zero', content: '', mode: 0 },
      { path: 'deep/a/b/c', content: 'implicit parents' },
    ]);

    const st = (p: string): fs.Stats => fs.lstatSync(path.join(dest, p));
    expect(st('dir').isDirectory()).toBe(true);
    expect(st('dir').mode & 0o7777).toBe(0o750);
    expect([st('dir').uid, st('dir').gid]).toEqual([1000, 1001]);
    // the dir's time survives the creation of its child
    expect(st('dir').mtimeMs / 1000).toBe(secs(T1));
    expect(fs.readFileSync(path.join(dest, 'dir/file'), 'utf8')).toBe('hello');
    expect(st('dir/file').mode & 0o7777).toBe(0o640);
    expect([st('dir/file').uid, st('dir/file').gid]).toEqual([1002, 1003]);
    expect(st('dir/file').mtimeMs / 1000).toBe(secs(T2));
    expect(st('suid').mode & 0o7777).toBe(0o4755);
    expect(st('sgid').mode & 0o7777).toBe(0o2711);
    expect([st('sgid').uid, st('sgid').gid]).toEqual([5, 6]);
    expect(st('tmp').mode & 0o7777).toBe(0o1777);
    expect(st('link').isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(path.join(dest, 'link'))).toBe('/etc/passwd');
    expect([st('link').uid, st('link').gid]).toEqual([7, 8]);
    expect(st('link').mtimeMs / 1000).toBe(secs(T2));
    expect(st('hard').ino).toBe(st('dir/file').ino);
    expect(st('hard').nlink).toBe(2);
    expect(st('dev/null').isCharacterDevice()).toBe(true);
    expect(st('dev/null').rdev).toBe((1 << 8) | 3);
    expect(st('dev/null').mode & 0o7777).toBe(0o666);
    expect(st('dev/loop0').isBlockDevice()).toBe(true);
    expect(st('dev/loop0').rdev).toBe(7 << 8);
    expect(st('dev/loop0').gid).toBe(6);
    expect(st('fifo').isFIFO()).toBe(true);
    expect(st('zero').mode & 0o7777).toBe(0);
    expect(fs.readFileSync(path.join(dest, 'deep/a/b/c'), 'utf8')).toBe('implicit parents');
    expect(native().lgetxattr(path.join(dest, 'xa'), 'user.greeting')?.toString()).toBe('hi there');
    expect(native().lgetxattr(path.join(dest, 'xa'), 'trusted.berth')?.toString()).toBe('QQQQ');

    // 13 entries + root + implicit dev/, deep/, deep/a, deep/a/b - the hardlink = 17 inodes
    expect(res.inodes).toBe(17);
    expect(res.size).toBeGreaterThan(0);
  });

  it('keeps binary xattr values byte-exact (security.capability)', async () => {
    // cap v2, effective, permitted = CAP_SETUID|CAP_NET_RAW: bytes that are not valid UTF-8
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const bin = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
    const placeholderCap = 'C'.repeat(cap.length);
    const tar = makeTarSync([
      {
        path: 'usr/bin/ping',
        content: 'elf',
        mode: 0o755,
        pax: { 'SCHILY.xattr.security.capability': placeholderCap, 'SCHILY.xattr.trusted.bin': 'BBBB' },
      },
    ]);
    const ci = tar.indexOf(placeholderCap);
    cap.copy(tar, ci);
    bin.copy(tar, tar.indexOf('BBBB'));
    await apply(tar);
    const p = path.join(dest, 'usr/bin/ping');
    expect(native().lgetxattr(p, 'security.capability')).toEqual(cap);
    expect(native().lgetxattr(p, 'trusted.bin')).toEqual(bin);
  });

  it('turns whiteouts into overlay whiteouts and opaque markers into the xattr', async () => {
    await apply([
      { path: 'etc/.wh.motd', content: '' },
      { path: 'var/cache/.wh..wh..opq', content: '' },
      { path: 'var/cache/new', content: 'n' },
      { path: '.wh..wh.plnk/123', type: 'hardlink', linkname: 'var/cache/new' },
    ]);
    const wh = fs.lstatSync(path.join(dest, 'etc/motd'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(fs.existsSync(path.join(dest, 'etc/.wh.motd'))).toBe(false);
    expect(native().lgetxattr(path.join(dest, 'var/cache'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(fs.existsSync(path.join(dest, 'var/cache/.wh..wh..opq'))).toBe(false);
    expect(fs.readdirSync(path.join(dest, 'var/cache'))).toEqual(['new']);
  });

  it('drops trusted.overlay xattrs that come from the tar', async () => {
    await apply([{ path: 'd/', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc' } }]);
    expect(native().llistxattr(path.join(dest, 'd'))).not.toContain('trusted.overlay.redirect');
  });

  it('lets later entries replace earlier ones', async () => {
    await apply([
      { path: 'a', content: 'file first' },
      { path: 'a/', type: 'dir', mode: 0o700 },
      { path: 'a/inner', content: 'x' },
      { path: 'b/', type: 'dir' },
      { path: 'b/child', content: 'gone' },
      { path: 'b', content: 'dir replaced by file' },
      { path: 'c', content: 'old' },
      { path: 'c', type: 'symlink', linkname: 'a' },
      { path: 'd/', type: 'dir', mode: 0o755 },
      { path: 'd/keep', content: 'kept' },
      { path: 'd/', type: 'dir', mode: 0o711, uid: 3 },
    ]);
    expect(fs.lstatSync(path.join(dest, 'a')).isDirectory()).toBe(true);
    expect(fs.readFileSync(path.join(dest, 'a/inner'), 'utf8')).toBe('x');
    expect(fs.readFileSync(path.join(dest, 'b'), 'utf8')).toBe('dir replaced by file');
    expect(fs.readlinkSync(path.join(dest, 'c'))).toBe('a');
    expect(fs.readFileSync(path.join(dest, 'd/keep'), 'utf8')).toBe('kept');
    expect(fs.lstatSync(path.join(dest, 'd')).mode & 0o7777).toBe(0o711);
    expect(fs.lstatSync(path.join(dest, 'd')).uid).toBe(3);
  });

  it('treats absolute names as relative to the layer root', async () => {
    await apply([{ path: '/abs/file', content: 'inside' }]);
    expect(fs.readFileSync(path.join(dest, 'abs/file'), 'utf8')).toBe('inside');
  });

  it('applies the root entry to the layer root', async () => {
    await apply([{ path: './', type: 'dir', mode: 0o700, uid: 9, gid: 9 }]);
    expect(fs.lstatSync(dest).mode & 0o7777).toBe(0o700);
    expect(fs.lstatSync(dest).uid).toBe(9);
  });

  it('links a hardlink to a symlink as the symlink itself, never its target', async () => {
    const secret = path.join(outside, 'secret');
    await apply([
      { path: 's', type: 'symlink', linkname: secret },
      { path: 'h', type: 'hardlink', linkname: 's' },
    ]);
    expect(fs.lstatSync(path.join(dest, 'h')).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(secret).nlink).toBe(1);
  });

  it('streams big files', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    await apply([{ path: 'big', content: big }]);
    expect(fs.readFileSync(path.join(dest, 'big')).equals(big)).toBe(true);
  });

  const hostile: [string, () => TarEntry[]][] = [
    ['../evil', () => [{ path: '../evil', content: 'x' }]],
    ['a/../../evil', () => [{ path: 'a/../../evil', content: 'x' }]],
    ['../ as a directory', () => [{ path: '../outside/', type: 'dir' }]],
    [
      'a write through a symlinked dir',
      () => [
        { path: 'link', type: 'symlink', linkname: outside },
        { path: 'link/evil', content: 'x' },
      ],
    ],
    [
      'a write through a relative symlink',
      () => [
        { path: 'up', type: 'symlink', linkname: '../../outside' },
        { path: 'up/secret', content: 'overwritten' },
      ],
    ],
    [
      'a directory through a symlink',
      () => [
        { path: 'link', type: 'symlink', linkname: outside },
        { path: 'link/sub/', type: 'dir' },
      ],
    ],
    [
      'a whiteout through a symlink',
      () => [
        { path: 'link', type: 'symlink', linkname: outside },
        { path: 'link/.wh.secret', content: '' },
      ],
    ],
    [
      'an opaque marker through a symlink',
      () => [
        { path: 'link', type: 'symlink', linkname: outside },
        { path: 'link/.wh..wh..opq', content: '' },
      ],
    ],
    [
      'a symlink replaced under a dir then written through',
      () => [
        { path: 'd/', type: 'dir' },
        { path: 'd', type: 'symlink', linkname: outside },
        { path: 'd/evil', content: 'x' },
      ],
    ],
    ['a hardlink to ../../etc/passwd', () => [{ path: 'h', type: 'hardlink', linkname: '../../etc/passwd' }]],
    [
      'a hardlink to a file not in the layer',
      () => [{ path: 'h', type: 'hardlink', linkname: '/etc/passwd' }],
    ],
    [
      'a hardlink through a symlink',
      () => [
        { path: 's', type: 'symlink', linkname: outside },
        { path: 'h', type: 'hardlink', linkname: 's/secret' },
      ],
    ],
    [
      'a hardlink to a directory',
      () => [
        { path: 'd/', type: 'dir' },
        { path: 'h', type: 'hardlink', linkname: 'd' },
      ],
    ],
    ['a whiteout of ..', () => [{ path: 'a/.wh...', content: '' }]],
    ['a file replacing the root', () => [{ path: '.', content: 'x' }]],
  ];

  it.each(hostile)('rejects %s and writes nothing outside', async (_name, entries) => {
    const before = outsideSnapshot();
    const err = await apply(entries()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotError);
    expect((err as Error).message).toMatch(/layer rejected: entry '/);
    expect(outsideSnapshot()).toEqual(before);
    expect(fs.existsSync(path.join(tmp, 'evil'))).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'root', 'evil'))).toBe(false);
  });

  it('rejects a truncated tar', async () => {
    const tar = makeTarSync([{ path: 'f', content: Buffer.alloc(4096, 1) }]);
    await expect(apply(tar.subarray(0, 1024))).rejects.toThrow(SnapshotError);
  });

  it('rejects a corrupt header', async () => {
    const tar = makeTarSync([{ path: 'f', content: 'x' }]);
    tar[0] = 0x41; // breaks the checksum
    await expect(apply(tar)).rejects.toThrow(/malformed layer tar/);
  });

  it('rejects an oversized pax header without buffering it', async () => {
    const tar = makeTarSync([
      { path: 'f', content: 'x', pax: { 'SCHILY.xattr.user.big': 'x'.repeat(2 << 20) } },
    ]);
    await expect(apply(tar)).rejects.toThrow(/exceeds the 1048576-byte limit/);
  });

  it('passes on an error of the source stream', async () => {
    const good = makeTarSync([{ path: 'f', content: Buffer.alloc(2048, 1) }]);
    const src = new Readable({
      read() {
        this.push(good.subarray(0, 512));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(applyLayerTar(dest, src)).rejects.toThrow('connection reset');
  });

  it('refuses a non-empty destination', async () => {
    fs.writeFileSync(path.join(dest, 'x'), '');
    await expect(apply([{ path: 'f', content: 'x' }])).rejects.toThrow(/not empty/);
  });
});
