// readMergedFile on layer dirs made by the real apply (whiteouts as char devices 0:0, opaque dirs
// as trusted.overlay.opaque): needs root and the native addon, like apply.test.ts. Each case is also
// checked against an overlay mount of the same dirs, so the reader answers what a container sees.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { makeTarSync, opaqueWhiteout, type TarEntry, whiteout } from '../../test/lab/tar';
import { native } from '../util/native';
import { applyLayerTar } from './apply';
import { MAX_MERGED_FILE, cleanPath, readMergedFile } from './merged-read';

let tmp: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-merged-'));
  fs.mkdirSync(path.join(tmp, 'outside'));
  fs.writeFileSync(path.join(tmp, 'outside', 'secret'), 'keep out');
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Applies each layer into its own dir; bottom first, as readMergedFile takes them. */
async function layers(...tars: TarEntry[][]): Promise<string[]> {
  const dirs: string[] = [];
  for (const [i, entries] of tars.entries()) {
    const d = path.join(tmp, `l${i}`);
    fs.mkdirSync(d);
    await applyLayerTar(d, Readable.from([makeTarSync(entries)]));
    dirs.push(d);
  }
  return dirs;
}

/** What a read-only overlay mount of `dirs` shows at `p` (a regular file's text, else undefined). */
function throughOverlay(dirs: string[], p: string): string | undefined {
  const mnt = path.join(tmp, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  const n = native();
  // lowerdir lists the top layer first; one layer needs a second (an empty dir) to mount read-only
  const lower = [...dirs].reverse();
  if (lower.length === 1) {
    fs.mkdirSync(path.join(tmp, 'empty'), { recursive: true });
    lower.push(path.join(tmp, 'empty'));
  }
  n.mount('overlay', mnt, 'overlay', n.mountConstants.MS_RDONLY, `lowerdir=${lower.join(':')}`);
  try {
    const f = path.join(mnt, cleanPath(p));
    // the kernel follows absolute links from the host root: only relative chains are compared
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(f);
    } catch {
      return undefined; // ENOENT, or ENOTDIR below a file
    }
    return st.isFile() ? fs.readFileSync(f, 'utf8') : undefined;
  } finally {
    n.umount2(mnt, 0);
  }
}

async function read(dirs: string[], p: string): Promise<string | undefined> {
  return (await readMergedFile(dirs, p))?.toString();
}

/** Each path reads `want` (undefined: no regular file) through readMergedFile and the overlay mount. */
async function expectBoth(
  dirs: string[],
  cases: readonly (readonly [string, string | undefined])[],
): Promise<void> {
  for (const [p, want] of cases) {
    expect(await read(dirs, p)).toBe(want);
    expect(throughOverlay(dirs, p)).toBe(want);
  }
}

const base: TarEntry[] = [
  { path: 'etc/', type: 'dir' },
  { path: 'etc/passwd', content: 'base-passwd' },
  { path: 'etc/group', content: 'base-group' },
  { path: 'etc/sub/', type: 'dir' },
  { path: 'etc/sub/f', content: 'sub-f' },
  { path: 'data/', type: 'dir' },
  { path: 'data/real', content: 'real' },
];

describe('readMergedFile', () => {
  it('reads from the top layer that has the file, and merges directories', async () => {
    const dirs = await layers(base, [
      { path: 'etc/', type: 'dir' },
      { path: 'etc/passwd', content: 'top-passwd' },
    ]);
    await expectBoth(dirs, [
      ['/etc/passwd', 'top-passwd'],
      ['etc/group', 'base-group'],
      ['/etc/sub/f', 'sub-f'],
      ['/etc/missing', undefined],
      ['/etc', undefined],
      ['/', undefined],
      ['/etc/passwd/x', undefined],
    ]);
  });

  it('honours whiteouts of files and of parent directories', async () => {
    const dirs = await layers(base, [
      { path: 'etc/', type: 'dir' },
      whiteout('etc/group'),
      whiteout('etc/sub'),
    ]);
    await expectBoth(dirs, [
      ['/etc/group', undefined],
      ['/etc/sub/f', undefined],
      ['/etc/passwd', 'base-passwd'],
    ]);
  });

  it('honours opaque directories, and a directory that replaces a lower file', async () => {
    const dirs = await layers(
      base,
      [{ path: 'etc/', type: 'dir' }, opaqueWhiteout('etc/'), { path: 'etc/passwd', content: 'new' }],
      [{ path: 'data/', type: 'dir' }, whiteout('data/real')],
      [
        { path: 'data/', type: 'dir' },
        { path: 'data/real/', type: 'dir' },
        { path: 'data/real/x', content: 'x' },
      ],
    );
    await expectBoth(dirs, [
      ['/etc/passwd', 'new'],
      ['/etc/group', undefined],
      ['/etc/sub/f', undefined],
      ['/data/real', undefined],
      ['/data/real/x', 'x'],
    ]);
  });

  it('a file above hides a directory below, and a whiteout in a middle layer ends the merge', async () => {
    const dirs = await layers(
      base,
      [{ path: 'etc/', type: 'dir' }, whiteout('etc/sub')],
      [
        { path: 'etc/', type: 'dir' },
        { path: 'etc/sub/', type: 'dir' },
        { path: 'etc/sub/g', content: 'g' },
      ],
      [{ path: 'data', content: 'a file now' }],
    );
    await expectBoth(dirs, [
      ['/etc/sub/g', 'g'],
      ['/etc/sub/f', undefined],
      ['/data/real', undefined],
      ['/data', 'a file now'],
    ]);
  });

  it('follows symlinks in any component inside the image root only', async () => {
    const dirs = await layers(base, [
      { path: 'etc/', type: 'dir' },
      { path: 'etc/passwd', type: 'symlink', linkname: '../../../data/real' },
      { path: 'etc/shadow', type: 'symlink', linkname: `../../../../${path.join(tmp, 'outside', 'secret')}` },
      { path: 'link', type: 'symlink', linkname: '/etc' },
      { path: 'rel', type: 'symlink', linkname: 'etc/sub' },
      { path: 'loop', type: 'symlink', linkname: 'loop' },
      { path: 'abs', type: 'symlink', linkname: path.join(tmp, 'outside') },
      { path: 'hard', type: 'hardlink', linkname: 'etc/passwd' },
    ]);
    expect(await read(dirs, '/etc/passwd')).toBe('real');
    expect(await read(dirs, '/link/group')).toBe('base-group');
    expect(await read(dirs, '/link/sub/f')).toBe('sub-f');
    expect(await read(dirs, '/rel/f')).toBe('sub-f');
    expect(await read(dirs, '/hard')).toBe('real'); // a hardlink of the symlink etc/passwd
    expect(throughOverlay(dirs, '/rel/f')).toBe('sub-f');
    // absolute targets and '..' stay in the image: the host's files are never read
    expect(await read(dirs, '/etc/shadow')).toBeUndefined();
    expect(await read(dirs, '/abs/secret')).toBeUndefined();
    await expect(read(dirs, '/loop')).rejects.toThrow(/too many levels/);
  });

  it('refuses a file larger than the bound', async () => {
    const dirs = await layers([{ path: 'big', content: Buffer.alloc(MAX_MERGED_FILE + 1) }]);
    await expect(read(dirs, '/big')).rejects.toThrow(/larger than/);
  });

  it('cleans paths', () => {
    expect(cleanPath('../../etc//passwd/')).toBe('/etc/passwd');
    expect(cleanPath('')).toBe('/');
  });
});
