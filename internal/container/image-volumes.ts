// Image volumes (KEP-4639): a CRI Mount with `image` set gets that image's root filesystem,
// read-only. Each one is a read-only snapshot view of the image's layers (the unpacked layers
// themselves, shared, never copied; the snapshot keeps the layers from being freed while the
// container exists, exactly as its rootfs snapshot does), mounted at
// <bundle>/imgvol/<mount index>; the container gets a read-only bind of the requested sub-path of
// it (resolved by image-subpath.ts).
//
// Crash safety: names are derived from the container id (snapshot `<id>.iv<index>`, mount under
// its bundle), so whatever a kill -9 leaves is found again without a record of it: release() unmounts
// everything under <bundle>/imgvol and removes every snapshot `<id>.iv*`.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { Mount__Output } from '../../api/generated';
import type { Snapshotter } from '../snapshot/types';
import type { IdMap } from '../snapshot/idmap';
import { mountSnapshot } from '../snapshot/mount';
import { isMountPoint, mountsUnder, unmount } from '../util/mount';
import { invalidArgument, short } from '../errors';
import { resolveImageSubPath, type EntryKind, type ImageTree } from './image-subpath';

const VOLUME_SEP = '.iv';
const VOLUMES_DIR = 'imgvol';

/** An image volume of a container, as its record keeps it. */
export interface ImageVolume {
  /** index of the mount in ContainerConfig.mounts */
  index: number;
  /** the image as requested (Mount.image.image) */
  image: string;
  /** the image's id (config digest) */
  imageId: string;
  /** the snapshot holding the view */
  key: string;
  /** where the whole image is mounted on the host (read-only) */
  viewDir: string;
  /** the resolved sub-path inside the image ('' for its root); set once the view is mounted */
  subPath?: string;
}

/** Mounts of a container config that are image volumes, with their index. */
export function imageMounts(mounts: Mount__Output[] | undefined): { index: number; mount: Mount__Output }[] {
  return (mounts ?? []).flatMap((mount, index) => (mount.image?.image ? [{ index, mount }] : []));
}

export function volumeKey(containerId: string, index: number): string {
  return `${containerId}${VOLUME_SEP}${index}`;
}

/** The container a snapshot key belongs to: itself for a rootfs, the prefix for a volume view. */
export function snapshotOwner(key: string): string {
  const i = key.indexOf(VOLUME_SEP);
  return i < 0 ? key : key.slice(0, i);
}

export function volumeDir(bundle: string, index: number): string {
  return path.join(bundle, VOLUMES_DIR, String(index));
}

/** An ImageTree over a directory on the host (lstat and readlink below `root`). */
export function hostTree(root: string): ImageTree {
  return {
    async kind(rel): Promise<EntryKind | undefined> {
      const st = await fsp.lstat(path.join(root, rel)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
        throw err;
      });
      if (!st) return undefined;
      if (st.isSymbolicLink()) return 'symlink';
      if (st.isDirectory()) return 'dir';
      return st.isFile() ? 'file' : 'other';
    },
    readlink: (rel) => fsp.readlink(path.join(root, rel)),
  };
}

/**
 * Prepares (or finds) the view snapshot of `vol` on `chainIds` and mounts it at vol.viewDir unless
 * it is mounted already; then resolves `subPath` inside it. Returns the host directory to bind.
 */
export async function mountImageVolume(
  snapshotter: Snapshotter,
  vol: ImageVolume,
  chainIds: string[],
  subPath: string,
  where: string,
  idmap?: IdMap,
): Promise<string> {
  await fsp.mkdir(vol.viewDir, { recursive: true, mode: 0o755 });
  const spec = (await snapshotter.info(vol.key))
    ? await snapshotter.mounts(vol.key)
    : await snapshotter.prepare(vol.key, chainIds, { readOnly: true, ...(idmap ? { idmap } : {}) });
  if (!(await isMountPoint(vol.viewDir))) mountSnapshot(spec, vol.viewDir);
  vol.subPath = await resolveImageSubPath(subPath, hostTree(vol.viewDir), where);
  return vol.subPath ? path.join(vol.viewDir, vol.subPath) : vol.viewDir;
}

/**
 * Remounts the view of a volume whose snapshot exists but whose mount is gone (a restart after
 * someone unmounted it); the container's own bind is unaffected either way. Returns whether it did.
 */
export async function remountImageVolume(snapshotter: Snapshotter, vol: ImageVolume): Promise<boolean> {
  if (!(await snapshotter.info(vol.key)) || (await isMountPoint(vol.viewDir))) return false;
  await fsp.mkdir(vol.viewDir, { recursive: true, mode: 0o755 });
  mountSnapshot(await snapshotter.mounts(vol.key), vol.viewDir);
  return true;
}

/**
 * Unmounts every image volume view of container `id` and removes their snapshots. Idempotent; it
 * needs no record, so it also cleans what an interrupted create left.
 */
export async function releaseImageVolumes(
  snapshotter: Snapshotter,
  id: string,
  bundle: string,
): Promise<void> {
  const dir = path.join(bundle, VOLUMES_DIR);
  for (const m of await mountsUnder(dir)) await unmount(m);
  await fsp.rm(dir, { recursive: true, force: true });
  for (const s of await snapshotter.list())
    if (s.key !== id && snapshotOwner(s.key) === id) await snapshotter.remove(s.key);
}

const clean = (p: string): string => path.posix.normalize(p).replace(/(.)\/+$/, '$1');

/**
 * A mount whose destination lies inside an image volume needs its mount point to exist in the
 * image: the view is read-only, so runc could not create it (it would fail at create with EROFS).
 * INVALID_ARGUMENT naming both mounts when it is missing. `sources`: per image volume's index in
 * `mounts`, the host dir bound there. A symlink on the way is left to runc to resolve.
 */
export async function checkMountsInsideVolumes(
  mounts: Mount__Output[],
  sources: Record<number, string>,
): Promise<void> {
  for (const [key, dir] of Object.entries(sources)) {
    const vol = mounts[Number(key)];
    if (!vol) continue;
    const base = clean(vol.container_path);
    const tree = hostTree(dir);
    for (const m of mounts) {
      const dest = clean(m.container_path);
      if (m === vol || !dest.startsWith(`${base}/`)) continue;
      let rel = '';
      for (const part of dest.slice(base.length + 1).split('/')) {
        rel = rel ? `${rel}/${part}` : part;
        const kind = await tree.kind(rel);
        if (kind === 'symlink') break;
        if (kind === undefined)
          throw invalidArgument(
            `mount ${short(m.container_path)}: its mount point does not exist in the read-only image volume at ${short(vol.container_path)}`,
          );
      }
    }
  }
}
