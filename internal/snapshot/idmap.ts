// ID-mapped copies of layers, for pods with their own user namespace (Kubernetes hostUsers: false).
//
// runc 1.1.5 cannot idmap the rootfs, util-linux 2.38 has no X-mount.idmap, and Berth's native
// addon has no mount_setattr: so instead of an idmapped mount, a layer is copied once per
// (layer, mapping) with every owner shifted into the mapping's host range, and container snapshots
// of such pods stack on those copies. The originals stay shared and untouched.
//
// The copy is `cp -a --reflink=auto` (keeps hard links, xattrs such as trusted.overlay.opaque,
// device nodes, times; shares extents where the file system can) followed by one walk of the
// ORIGINAL tree that chowns each copied entry to the mapped owner of its source. Owners are read
// from the source so that hard links, which cp keeps as one inode, end up right however often the
// walk meets them. chown(2) clears set-user/group-ID bits and security.capability, so both are put
// back: the mode as it was, the file capability rewritten as a v3 capability whose root is the
// mapped root (a v2 capability means "host root" and would be ignored inside the user namespace).
import { createHash } from 'node:crypto';
import { spawnProcess } from '../util/spawn';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { internalError, invalidArgument } from '../errors';
import { native } from '../util/native';

export interface IdRange {
  containerID: number;
  hostID: number;
  size: number;
}

/** The uid and gid mappings of a user namespace (OCI runtime spec field names). */
export interface IdMap {
  uids: IdRange[];
  gids: IdRange[];
}

/** The kernel takes at most 340 lines per uid_map/gid_map. */
export const MAX_RANGES = 340;
const MAX_ID = 0xffffffff;
/** Where ids the mapping does not cover go: the kernel's overflow id, outside any pod's range. */
export const OVERFLOW_ID = 65534;

/** Checks a mapping: whole numbers in range, positive sizes, no overlap on either side. */
export function checkIdMap(map: IdMap): void {
  for (const [what, list] of [
    ['uids', map.uids],
    ['gids', map.gids],
  ] as const) {
    if (!Array.isArray(list) || list.length === 0) throw invalidArgument(`id mapping: ${what} is empty`);
    if (list.length > MAX_RANGES)
      throw invalidArgument(`id mapping: ${what} has ${list.length} ranges (at most ${MAX_RANGES})`);
    for (const r of list) {
      const ok = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= MAX_ID;
      if (!ok(r.containerID) || !ok(r.hostID) || !ok(r.size) || r.size === 0)
        throw invalidArgument(`id mapping: ${what} range ${JSON.stringify(r)} is invalid`);
      if (r.containerID + r.size - 1 > MAX_ID || r.hostID + r.size - 1 > MAX_ID)
        throw invalidArgument(`id mapping: ${what} range ${JSON.stringify(r)} passes 2^32-1`);
    }
    for (const side of ['containerID', 'hostID'] as const) {
      const sorted = [...list].sort((a, b) => a[side] - b[side]);
      for (let i = 1; i < sorted.length; i++)
        if (sorted[i - 1][side] + sorted[i - 1].size > sorted[i][side])
          throw invalidArgument(`id mapping: ${what} ranges overlap on the ${side} side`);
    }
  }
}

/** The host id of container id `id`; the overflow id when the mapping does not cover it. */
export function toHost(id: number, ranges: readonly IdRange[]): number {
  for (const r of ranges)
    if (id >= r.containerID && id < r.containerID + r.size) return r.hostID + (id - r.containerID);
  return OVERFLOW_ID;
}

/** A short stable name of (layer, mapping): the directory name of the mapped copy. */
export function mappedKey(chainId: string, map: IdMap): string {
  const canon = (l: IdRange[]): string => l.map((r) => `${r.containerID}:${r.hostID}:${r.size}`).join(',');
  return createHash('sha256')
    .update(`${chainId}\nu=${canon(map.uids)}\ng=${canon(map.gids)}`)
    .digest('hex');
}

export function sameIdMap(a: IdMap | undefined, b: IdMap | undefined): boolean {
  if (!a || !b) return a === b;
  const eq = (x: IdRange[], y: IdRange[]): boolean =>
    x.length === y.length &&
    x.every((r, i) => r.containerID === y[i].containerID && r.hostID === y[i].hostID && r.size === y[i].size);
  return eq(a.uids, b.uids) && eq(a.gids, b.gids);
}

const CAP_XATTR = 'security.capability';
const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_REVISION_2 = 0x02000000;
const VFS_CAP_REVISION_3 = 0x03000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;

/**
 * A file capability xattr rewritten for the mapped root: v3 (with a root id) whose root is
 * `rootHost`. v2 values are taken as owned by container root; v3 values keep their container-side
 * root, mapped. Returns undefined for a value it does not understand (then none is set).
 */
export function remapFileCaps(value: Buffer, uids: readonly IdRange[]): Buffer | undefined {
  if (value.length < 20) return undefined;
  const magic = value.readUInt32LE(0);
  const rev = (magic & VFS_CAP_REVISION_MASK) >>> 0;
  let root = 0;
  if (rev === VFS_CAP_REVISION_3 && value.length >= 24) root = value.readUInt32LE(20);
  else if (rev !== VFS_CAP_REVISION_2) return undefined;
  const out = Buffer.alloc(24);
  out.writeUInt32LE((VFS_CAP_REVISION_3 | (magic & VFS_CAP_FLAGS_EFFECTIVE)) >>> 0, 0);
  value.copy(out, 4, 4, 20);
  out.writeUInt32LE(toHost(root, uids), 20);
  return out;
}

function runCp(src: string, dst: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnProcess('cp', ['-a', '--reflink=auto', '--', src, dst], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
    });
    let err = '';
    child.stderr?.on('data', (b: Buffer) => {
      err = (err + b.toString('utf8')).slice(-4096);
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(internalError(`copying layer for id mapping failed: ${err.trim()}`)),
    );
  });
}

/**
 * Makes `dst` (must not exist) a copy of the layer tree `src` with owners shifted by `map`.
 * The caller publishes it (rename) only after this resolves.
 */
export async function copyLayerMapped(src: string, dst: string, map: IdMap): Promise<void> {
  await runCp(src, dst);
  const n = native();
  const walk = async (rel: string): Promise<void> => {
    const from = path.join(src, rel);
    const to = path.join(dst, rel);
    const st = await fsp.lstat(from);
    await fsp.lchown(to, toHost(st.uid, map.uids), toHost(st.gid, map.gids));
    if (st.isSymbolicLink()) return;
    if (st.isFile()) {
      if (st.mode & 0o6000) await fsp.chmod(to, st.mode & 0o7777);
      const caps = n.lgetxattr(from, CAP_XATTR);
      const remapped = caps && remapFileCaps(caps, map.uids);
      if (remapped) n.lsetxattr(to, CAP_XATTR, remapped);
      return;
    }
    if (st.isDirectory()) {
      if (st.mode & 0o6000) await fsp.chmod(to, st.mode & 0o7777);
      for (const name of await fsp.readdir(from)) await walk(path.join(rel, name));
    }
  };
  await walk('.');
}
