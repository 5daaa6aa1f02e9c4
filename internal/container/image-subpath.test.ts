import { isBerthError, Status } from '../errors';
import { MAX_SYMLINKS, resolveImageSubPath, type EntryKind, type ImageTree } from './image-subpath';

/** An in-memory image: directories end with '/', symlinks are `-> target`, anything else a file. */
function tree(entries: Record<string, string>): ImageTree & { looked: string[] } {
  const looked: string[] = [];
  return {
    looked,
    kind(rel): Promise<EntryKind | undefined> {
      looked.push(rel);
      if (`${rel}/` in entries) return Promise.resolve('dir');
      const v = entries[rel];
      if (v === undefined) return Promise.resolve(undefined);
      return Promise.resolve(v.startsWith('-> ') ? 'symlink' : 'file');
    },
    readlink(rel): Promise<string> {
      return Promise.resolve((entries[rel] ?? '').slice(3));
    },
  };
}

const img = tree({
  'etc/': '',
  'etc/ssl/': '',
  'etc/ssl/certs/': '',
  'etc/passwd': 'root:x:0:0',
  'data/': '',
  'data/models/': '',
  abs: '-> /etc/ssl',
  rel: '-> data/../etc',
  deep: '-> etc/ssl/certs',
  up: '-> ../../../host',
  'data/up2': '-> ../..',
  'data/back': '-> ../etc',
  'data/tricky': '-> ../deep/../..',
  loop1: '-> loop2',
  loop2: '-> loop1',
  dangling: '-> nowhere',
  file: '-> etc/passwd',
});

async function refusal(sub: string): Promise<string> {
  try {
    await resolveImageSubPath(sub, img, 'mount /v');
  } catch (err) {
    expect(isBerthError(err, Status.INVALID_ARGUMENT)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`${sub} was accepted`);
}

describe('resolveImageSubPath', () => {
  it('gives the image root for an empty or dot sub-path', async () => {
    expect(await resolveImageSubPath('', img, 'm')).toBe('');
    expect(await resolveImageSubPath('.', img, 'm')).toBe('');
    expect(await resolveImageSubPath('./', img, 'm')).toBe('');
  });

  it('walks plain directories, tolerating redundant slashes and dots and a .. that stays inside', async () => {
    expect(await resolveImageSubPath('etc/ssl', img, 'm')).toBe('etc/ssl');
    expect(await resolveImageSubPath('etc//ssl/./certs/', img, 'm')).toBe('etc/ssl/certs');
    expect(await resolveImageSubPath('data/../etc', img, 'm')).toBe('etc');
  });

  it('follows symlinks inside the image: absolute targets from the image root', async () => {
    expect(await resolveImageSubPath('abs', img, 'm')).toBe('etc/ssl');
    expect(await resolveImageSubPath('abs/certs', img, 'm')).toBe('etc/ssl/certs');
    expect(await resolveImageSubPath('rel/ssl', img, 'm')).toBe('etc/ssl');
    expect(await resolveImageSubPath('data/back', img, 'm')).toBe('etc');
    // '..' after a symlink is the parent of its target, as the kernel walks it
    expect(await resolveImageSubPath('deep/..', img, 'm')).toBe('etc/ssl');
    expect(await resolveImageSubPath('data/tricky', img, 'm')).toBe('etc');
  });

  it('refuses a sub-path escaping through .., naming it', async () => {
    expect(await refusal('..')).toMatch(/mount \/v: image_sub_path \.\. escapes the image through '\.\.'/);
    expect(await refusal('etc/../../x')).toMatch(/escapes the image/);
    expect(await refusal('data/../../..')).toMatch(/escapes the image/);
  });

  it('refuses a symlink escaping the image, naming the symlink', async () => {
    expect(await refusal('up')).toMatch(/escapes the image through the symlink up -> \.\.\/\.\.\/\.\.\/host/);
    expect(await refusal('data/up2')).toMatch(/through the symlink data\/up2 -> \.\.\/\.\./);
  });

  it('refuses a missing path, a dangling symlink, a file, a loop, an absolute path', async () => {
    expect(await refusal('nope')).toMatch(/image_sub_path nope does not exist in the image \(no nope\)/);
    expect(await refusal('etc/nope/deeper')).toMatch(/\(no etc\/nope\)/);
    expect(await refusal('dangling')).toMatch(/does not exist.*no nowhere/);
    expect(await refusal('etc/passwd')).toMatch(/etc\/passwd is not a directory/);
    expect(await refusal('file')).toMatch(/etc\/passwd is not a directory/);
    expect(await refusal('etc/passwd/x')).toMatch(/is not a directory/);
    expect(await refusal('loop1')).toMatch(/too many levels of symbolic links/);
    expect(await refusal('/etc')).toMatch(/must be relative/);
    expect(await refusal('etc\0')).toMatch(/NUL/);
  });

  it('never looks above the root: the walk stops at the first escape', async () => {
    img.looked.length = 0;
    await refusal('up');
    expect(img.looked).toEqual(['up']);
    expect(MAX_SYMLINKS).toBe(40);
  });
});
