import { mount } from '../oci/test-fixtures';
import { imageMounts, snapshotOwner, volumeDir, volumeKey } from './image-volumes';

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
