// A container's root filesystem: a writable snapshot on the image's layers, mounted at
// <bundle>/rootfs while the container exists.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Snapshotter } from '../snapshot/types';
import type { IdMap } from '../snapshot/idmap';
import { mountSnapshot } from '../snapshot/mount';
import { isMountPoint, unmount } from '../util/mount';
import { ROOTFS_DIR } from '../oci/bundle';

export function rootfsOf(bundle: string): string {
  return path.join(bundle, ROOTFS_DIR);
}

/**
 * Prepares the snapshot `key` on `chainIds` and mounts it at <bundle>/rootfs. With `idmap` (a pod
 * with its own user namespace) the snapshot stands on layer copies owned by the mapped ids.
 * `fill`, for a new snapshot, writes into its upper dir before the overlay is mounted (RestorePod
 * applies a checkpoint's rootfs diff there).
 */
export async function mountRootfs(
  snapshotter: Snapshotter,
  key: string,
  chainIds: string[],
  bundle: string,
  idmap?: IdMap,
  fill?: (upperDir: string | undefined) => Promise<void>,
): Promise<string> {
  const target = rootfsOf(bundle);
  await fsp.mkdir(target, { recursive: true, mode: 0o755 });
  const existing = await snapshotter.info(key);
  const spec = existing
    ? await snapshotter.mounts(key)
    : await snapshotter.prepare(key, chainIds, idmap ? { idmap } : undefined);
  if (!existing && fill) await fill((await snapshotter.info(key))?.upperDir);
  if (!(await isMountPoint(target))) mountSnapshot(spec, target);
  return target;
}

/** Unmounts the rootfs and removes the snapshot and the bundle. Idempotent. */
export async function releaseRootfs(snapshotter: Snapshotter, key: string, bundle: string): Promise<void> {
  const target = rootfsOf(bundle);
  await unmount(target);
  await snapshotter.remove(key);
  await fsp.rm(bundle, { recursive: true, force: true });
}
