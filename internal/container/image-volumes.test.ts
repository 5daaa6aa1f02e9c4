import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isBerthError, Status } from '../errors';
import { mount } from '../oci/test-fixtures';
import { checkMountsInsideVolumes, imageMounts, snapshotOwner, volumeDir, volumeKey } from './image-volumes';

const ID = 'a'.repeat(64);
const image = { image: 'img', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' };

describe('image volume names', () => {
  it('picks the mounts with an image, keeping their index in the config', () => {
    const mounts = [
      mount({ container_path: '/a', host_path: '/h' }),
      mount({ container_path: '/b', host_path: '', image }),
      mount({ container_path: '/c', host_path: '', image: { ...image, image: '' } }),
      mount({ container_path: '/d', host_path: '', image }),
    ];
    expect(imageMounts(mounts).map((m) => [m.index, m.mount.container_path])).toEqual([
      [1, '/b'],
      [3, '/d'],
    ]);
    expect(imageMounts(undefined)).toEqual([]);
  });

  it('derives snapshot keys and dirs from the container id, and the owner back from a key', () => {
    expect(volumeKey(ID, 2)).toBe(`${ID}.iv2`);
    expect(snapshotOwner(volumeKey(ID, 2))).toBe(ID);
    expect(snapshotOwner(ID)).toBe(ID);
    expect(volumeDir('/run/berth/bundles/x', 3)).toBe('/run/berth/bundles/x/imgvol/3');
  });
});

describe('checkMountsInsideVolumes', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ivcheck-'));
    fs.mkdirSync(path.join(dir, 'etc', 'conf'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'etc', 'file'), 'x');
    fs.symlinkSync('/nowhere', path.join(dir, 'link'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const vol = mount({ container_path: '/v', host_path: '', image });
  const at = (container_path: string) => mount({ container_path, host_path: '/h' });

  it('accepts mounts outside the volume and on mount points the image has (or behind a symlink)', async () => {
    const mounts = [vol, at('/v/etc/conf'), at('/v/etc/file/'), at('/v/link/x'), at('/vx/y'), at('/other')];
    await expect(checkMountsInsideVolumes(mounts, { 0: dir })).resolves.toBeUndefined();
  });

  it('refuses a mount point missing from the read-only image, naming both mounts', async () => {
    const err = await checkMountsInsideVolumes([at('/v/etc/new'), vol], { 1: dir }).catch((e: unknown) => e);
    expect(isBerthError(err, Status.INVALID_ARGUMENT)).toBe(true);
    expect((err as Error).message).toBe(
      'mount /v/etc/new: its mount point does not exist in the read-only image volume at /v',
    );
  });
});
