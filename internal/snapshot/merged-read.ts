// Reads one regular file out of a stack of unpacked layer dirs as the overlay mount of them would
// show it, without mounting anything: the topmost layer holding a name wins; an overlayfs whiteout
// (char device 0:0, as applyLayerTar writes OCI `.wh.` entries) hides the name in the layers below;
// a directory stops the lookup in lower layers at a non-directory or after a directory marked
// opaque (trusted.overlay.opaque=y); symlinks, in the last component or in a parent, are followed
// inside the image root only ('..' stops at '/', absolute targets start at the image root), at most
// MAX_HOPS of them. Layer dirs are never written once published, and each path opened is made of
// directories this lookup saw as directories in that same layer, so nothing outside a layer is read.
import { constants as C, promises as fsp, type Stats } from 'node:fs';
import * as posix from 'node:path/posix';
import { failedPrecondition } from '../errors';
import { native } from '../util/native';
import { OPAQUE_XATTR } from './apply';

const MAX_HOPS = 40;
/** Largest file read (an image's /etc/passwd or /etc/group). */
export const MAX_MERGED_FILE = 16 * 1024 * 1024;

/** Normalises a path inside the image: absolute, no '..' above the root, no trailing slash. */
export function cleanPath(p: string): string {
  return posix.normalize(posix.join('/', p)).replace(/\/+$/, '') || '/';
}

async function lstatIn(layer: string, p: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(posix.join(layer, p));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function isOpaque(dir: string): boolean {
  return native().lgetxattr(dir, OPAQUE_XATTR)?.toString() === 'y';
}

/** What the merged view holds at one name of a directory. */
type Entry =
  | { kind: 'dir'; layers: string[] } // the layers (top first) whose copies of the dir merge
  | { kind: 'symlink'; layer: string }
  | { kind: 'file'; layer: string; st: Stats }
  | { kind: 'other' }; // a whiteout, device, fifo or socket

/** Looks `p` up in `layers` (top first), which all hold a directory at `p`'s parent. */
async function lookup(layers: string[], p: string): Promise<Entry | undefined> {
  const dirs: string[] = [];
  for (const layer of layers) {
    const st = await lstatIn(layer, p);
    if (!st) continue;
    if (dirs.length === 0) {
      // a whiteout is a character device: like any other non-file, nothing to read there
      if (st.isSymbolicLink()) return { kind: 'symlink', layer };
      if (st.isFile()) return { kind: 'file', layer, st };
      if (!st.isDirectory()) return { kind: 'other' };
    } else if (!st.isDirectory()) {
      break; // a whiteout or a non-directory below a directory ends the merge
    }
    dirs.push(layer);
    if (isOpaque(posix.join(layer, p))) break;
  }
  return dirs.length > 0 ? { kind: 'dir', layers: dirs } : undefined;
}

/**
 * Reads `path` from the merged view of `layerDirs` (bottom layer first, as chain IDs are listed).
 * Undefined when there is no regular file there; FAILED_PRECONDITION when a symlink loop or a file
 * larger than MAX_MERGED_FILE is met.
 */
export async function readMergedFile(layerDirs: string[], path: string): Promise<Buffer | undefined> {
  const top = [...layerDirs].reverse();
  let rest = cleanPath(path).split('/').filter(Boolean);
  let hops = 0;
  // walk from the root: `dir` is the path resolved so far, `layers` those holding it as a directory
  let dir = '/';
  let layers = top;
  while (rest.length > 0) {
    const name = rest[0] as string;
    const p = posix.join(dir, name);
    const e = await lookup(layers, p);
    if (!e || e.kind === 'other') return undefined;
    if (e.kind === 'symlink') {
      if (++hops > MAX_HOPS)
        throw failedPrecondition(`too many levels of symbolic links resolving ${path} in the image`);
      const target = await fsp.readlink(posix.join(e.layer, p));
      // the target, then what was left after the link, resolved again from the image root
      rest = [...cleanPath(posix.resolve(dir, target)).split('/').filter(Boolean), ...rest.slice(1)];
      dir = '/';
      layers = top;
      continue;
    }
    rest = rest.slice(1);
    if (e.kind === 'file')
      return rest.length === 0 ? readRegular(posix.join(e.layer, p), e.st, path) : undefined;
    dir = p;
    layers = e.layers;
  }
  return undefined; // the path names a directory (or the root)
}

async function readRegular(file: string, st: Stats, path: string): Promise<Buffer> {
  if (st.size > MAX_MERGED_FILE)
    throw failedPrecondition(`${path} in the image is larger than ${MAX_MERGED_FILE} bytes`);
  const fh = await fsp.open(file, C.O_RDONLY | C.O_NOFOLLOW);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
