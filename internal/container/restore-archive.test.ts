import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Status } from '../errors';
import { applyDiffArgs, unpackArgs, unpackContainerCheckpoint } from './restore-archive';

describe('restore archive tar arguments', () => {
  it('unpacks with numeric owners into the dir', () => {
    expect(unpackArgs('/c/x.tar', '/d')).toEqual(['--numeric-owner', '-C', '/d', '-xf', '/c/x.tar']);
  });
  it('applies a diff keeping trusted.* xattrs (overlay opaque dirs) and numeric owners', () => {
    expect(applyDiffArgs('/d/rootfs-diff.tar', '/u')).toEqual([
      '--xattrs',
      '--xattrs-include=trusted.*',
      '--numeric-owner',
      '-C',
      '/u',
      '-xf',
      '/d/rootfs-diff.tar',
    ]);
  });
});

// real GNU tar on archives laid out as CheckpointContainer writes them (no CRIU needed)
describe('unpackContainerCheckpoint', () => {
  let tmp: string;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-restore-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const archive = (withImages: boolean): string => {
    const src = path.join(tmp, 'src');
    const upper = path.join(tmp, 'old-upper');
    fs.mkdirSync(path.join(upper, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'etc', 'changed'), 'new\n');
    fs.mkdirSync(src);
    if (withImages) {
      fs.mkdirSync(path.join(src, 'checkpoint'));
      fs.writeFileSync(path.join(src, 'checkpoint', 'inventory.img'), 'x');
    }
    fs.writeFileSync(path.join(src, 'spec.dump'), '{}');
    execFileSync('tar', ['--numeric-owner', '-C', upper, '-cf', path.join(src, 'rootfs-diff.tar'), '.']);
    const out = path.join(tmp, 'checkpoint.tar');
    execFileSync('tar', ['-C', src, '-cf', out, '.']);
    return out;
  };

  it('unpacks the CRIU images and applies the rootfs diff onto the upper dir', async () => {
    const upper = path.join(tmp, 'upper');
    fs.mkdirSync(upper);
    const images = await unpackContainerCheckpoint(archive(true), path.join(tmp, 'restore'), upper);
    expect(images).toBe(path.join(tmp, 'restore', 'checkpoint'));
    expect(fs.readFileSync(path.join(images, 'inventory.img'), 'utf8')).toBe('x');
    expect(fs.readFileSync(path.join(upper, 'etc', 'changed'), 'utf8')).toBe('new\n');
    // the diff is not kept beside the images once applied
    expect(fs.existsSync(path.join(tmp, 'restore', 'rootfs-diff.tar'))).toBe(false);
  });
  it('an archive without CRIU images is INVALID_ARGUMENT', async () => {
    await expect(
      unpackContainerCheckpoint(archive(false), path.join(tmp, 'restore'), undefined),
    ).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      message: expect.stringMatching(/no checkpoint\//),
    });
  });
  it('a file that is not a tar archive is INVALID_ARGUMENT', async () => {
    const bad = path.join(tmp, 'bad.tar');
    fs.writeFileSync(bad, 'not a tar archive at all, just text that is long enough'.repeat(20));
    await expect(unpackContainerCheckpoint(bad, path.join(tmp, 'restore'), undefined)).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
    });
  });
});
