// Secure application of an uncompressed OCI layer tar into an empty directory, producing the
// layer's overlayfs lower dir: OCI whiteouts become overlayfs whiteouts (`.wh.x` -> char device 0:0
// named x; `.wh..wh..opq` -> trusted.overlay.opaque=y on the parent).
//
// Security model. The destination starts empty and only this function writes to it, so an
// in-memory tree of what this tar has created is the truth about every path: a parent component
// is checked against it (never against the disk, never following a symlink). Rules:
//  - names are cleaned lexically; a leading '/' is dropped (absolute names are relative to the
//    layer root, as containerd and docker treat them); a '..' that climbs above the root rejects
//    the whole layer;
//  - an entry whose parent path crosses a symlink (or a non-directory) is rejected;
//  - a hardlink must name a non-directory created earlier by this same tar, reached without
//    crossing a symlink. A hardlink to a symlink links the symlink inode itself (link(2) does not
//    follow), so nothing outside is ever reached;
//  - nodes are created with calls that never follow a final symlink (open O_EXCL|O_NOFOLLOW,
//    mkdir, symlink, link, mknod, lchown, lutimes);
//  - trusted.overlay.* xattrs from the tar are dropped: only this code may steer overlayfs.
// On any error the destination is left half-written; the caller discards it (the snapshotter
// applies into a temp dir and removes it).
//
// Speed. File data streams to disk in batched async writes; metadata calls (open, chown, chmod,
// mkdir, utimes, mknod, setxattr) are synchronous: each is a few microseconds, far less than a
// thread-pool round trip, and the loop yields between entries while the tar arrives, and every
// SLICE_MS when it is already there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { extract as tarExtract, type Entry, type Extract, type Headers } from 'tar-stream';
import { BerthError, errMessage, short, Status } from '../errors';
import type { Logger } from '../log';
import { hasErrno, native } from '../util/native';
import { SnapshotError } from './errors';
import {
  HoleWriter,
  type SparseEntry,
  checkSparseMap,
  paxSparse,
  readSparseMap1,
  writeSparseData,
} from './sparse';

export interface ApplyOptions {
  log?: Logger;
  /** largest apparent size of a sparse file (RESOURCE_EXHAUSTED beyond); unbounded when unset */
  maxFileBytes?: number;
}

export interface ApplyResult {
  /** bytes on disk (sum of st_blocks * 512 over distinct inodes, the root included) */
  size: number;
  /** distinct inodes, the root included */
  inodes: number;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
const WHITEOUT_META_PREFIX = '.wh..wh.';
export const OPAQUE_XATTR = 'trusted.overlay.opaque';
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';
/** Longest pax / GNU long-name header we buffer (Go's archive/tar uses the same bound). */
const MAX_LONG_HEADER = 1 << 20;
const MAX_ID = 0xfffffffe;

const RAW_XATTRS = Symbol('rawXattrs');
type PaxRecords = Record<string, string> & { [RAW_XATTRS]?: Map<string, Buffer> };
interface TarHeader extends Headers {
  pax?: PaxRecords | null;
}

type Kind = 'dir' | 'file' | 'symlink' | 'special';
interface Node {
  kind: Kind;
  children?: Map<string, Node>;
  /** directory times, applied after all children exist (creating a child changes them) */
  times?: { atime: number; mtime: number };
}

interface Ctx {
  dest: string;
  root: Node;
  log?: Logger;
  maxFileBytes?: number;
}

/** the longest stretch of work done without letting other callbacks run (ms) */
const SLICE_MS = 4;

/**
 * A yield point for a loop of synchronous calls: once SLICE_MS of work has passed since the last
 * turn it gave, it lets other callbacks run. A tar that is already here (a small layer that arrived
 * at once, a stored blob) would otherwise apply in one run of microtasks, blocking the loop
 * (busybox's ~400 symlinks: ~80 ms on the main thread).
 */
function timeSlices(): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < SLICE_MS) return;
    await yieldToLoop();
    since = performance.now();
  };
}

/** Applies the layer tar `tar` into the empty directory `dest`. */
export async function applyLayerTar(
  dest: string,
  tar: Readable,
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  if (fs.readdirSync(dest).length > 0) throw new Error(`layer apply target ${dest} is not empty`);
  const ctx: Ctx = {
    dest,
    root: { kind: 'dir', children: new Map() },
    log: opts.log,
    maxFileBytes: opts.maxFileBytes,
  };
  const ex = tarExtract();
  hardenExtract(ex);
  let sourceError: unknown;
  const onSourceError = (err: Error): void => {
    sourceError = err;
    ex.destroy(err);
  };
  tar.on('error', onSourceError);
  tar.pipe(ex);
  let ok = false;
  let current = '';
  try {
    const turn = timeSlices();
    for await (const entry of ex) {
      current = entry.header.name;
      await applyEntry(ctx, entry as Entry & { header: TarHeader });
      await turn();
    }
    current = '';
    const result = await finish(ctx);
    ok = true;
    return result;
  } catch (err) {
    if (sourceError !== undefined) throw sourceError;
    if (err instanceof BerthError) throw err;
    if (current === '' || !isErrno(err)) {
      throw new SnapshotError(
        `malformed layer tar${current ? ` at entry '${short(current)}'` : ''}: ${errMessage(err)}`,
      );
    }
    throw new SnapshotError(`applying layer entry '${short(current)}': ${errMessage(err)}`, Status.INTERNAL, {
      cause: err,
    });
  } finally {
    tar.off('error', onSourceError);
    if (!ok) {
      tar.unpipe(ex);
      tar.on('error', () => undefined); // a late error from the abandoned source must not crash us
      tar.destroy();
      ex.destroy();
    }
  }
}

function isErrno(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

function hostile(name: string, why: string): SnapshotError {
  return new SnapshotError(`layer rejected: entry '${short(name)}' ${why}`);
}

/**
 * Cleans a tar entry name into path segments below the layer root ([] is the root itself).
 * A leading '/' is dropped; '.' and empty segments vanish; '..' pops, and popping past the root
 * throws.
 */
export function cleanEntryPath(name: string, what = name): string[] {
  if (name.includes('\0')) throw hostile(what, 'contains a NUL byte');
  const out: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) throw hostile(what, 'escapes the layer root');
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return out;
}

// tar-stream 3.1.7 decodes pax values as UTF-8, which mangles binary xattrs (security.capability),
// and buffers pax / long-name headers of any size. Both are fixed here by wrapping two of its
// internal methods on this one instance; the unit tests for binary xattrs and huge headers fail
// loudly should a tar-stream upgrade change these internals.
interface ExtractInternals {
  _header: { type?: string | null } | null;
  _pax: PaxRecords | null;
  _paxGlobal: PaxRecords | null;
  _longHeader: boolean;
  _missing: number;
  _decodeLongHeader(buf: Buffer): void;
  _consumeHeader(): boolean;
  _continueWrite(err: Error | null): void;
}

function hardenExtract(ex: Extract): void {
  const x = ex as unknown as ExtractInternals;
  if (
    typeof x._decodeLongHeader !== 'function' ||
    typeof x._consumeHeader !== 'function' ||
    typeof x._continueWrite !== 'function'
  ) {
    throw new Error('tar-stream internals changed: internal/snapshot/apply.ts needs an update');
  }
  const decodeLongHeader = x._decodeLongHeader.bind(x);
  x._decodeLongHeader = (buf: Buffer): void => {
    const type = x._header?.type;
    if (type === 'pax-header') {
      const rec = decodePax(buf);
      x._pax = x._paxGlobal ? { ...x._paxGlobal, ...rec } : rec;
    } else if (type === 'pax-global-header') {
      x._paxGlobal = decodePax(buf);
    } else {
      decodeLongHeader(buf);
    }
  };
  const consumeHeader = x._consumeHeader.bind(x);
  x._consumeHeader = (): boolean => {
    const r = consumeHeader();
    if (x._longHeader && x._missing > MAX_LONG_HEADER) {
      x._longHeader = false;
      x._continueWrite(
        new Error(`extended header of ${x._missing} bytes exceeds the ${MAX_LONG_HEADER}-byte limit`),
      );
      return false;
    }
    return r;
  };
}

/** Parses pax records ("<len> <key>=<value>\n"), keeping SCHILY.xattr values as raw bytes. */
export function decodePax(buf: Buffer): PaxRecords {
  const out: PaxRecords = {};
  const raw = new Map<string, Buffer>();
  const sparse00: string[] = []; // GNU sparse 0.0: repeated offset/numbytes records, in order
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break; // NUL padding after the last record
    const sp = buf.indexOf(0x20, off);
    const len = sp > off ? Number(buf.toString('latin1', off, sp)) : NaN;
    if (
      !Number.isSafeInteger(len) ||
      len <= sp - off + 1 ||
      off + len > buf.length ||
      buf[off + len - 1] !== 0x0a
    ) {
      throw new Error('malformed pax header record');
    }
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new Error('malformed pax header record');
    const key = rec.toString('utf8', 0, eq);
    const value = rec.subarray(eq + 1);
    out[key] = value.toString('utf8');
    if (key.startsWith('SCHILY.xattr.')) raw.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
    if (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes') {
      if ((key === 'GNU.sparse.offset') !== (sparse00.length % 2 === 0))
        throw new Error('malformed GNU sparse 0.0 records');
      sparse00.push(value.toString('utf8'));
    }
    off += len;
  }
  if (sparse00.length > 0) out['GNU.sparse.map'] = sparse00.join(',');
  out[RAW_XATTRS] = raw;
  return out;
}

interface Meta {
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
  xattrs: [string, Buffer][];
}

function headerMeta(h: TarHeader): Meta {
  const pax = h.pax ?? undefined;
  const uid = pax?.uid !== undefined ? Number(pax.uid) : h.uid;
  const gid = pax?.gid !== undefined ? Number(pax.gid) : h.gid;
  const mode = h.mode ?? 0;
  if (!isId(uid) || !isId(gid)) throw hostile(h.name, `has an invalid owner ${String(uid)}:${String(gid)}`);
  if (!Number.isInteger(mode) || mode < 0) throw hostile(h.name, 'has an invalid mode');
  const headerMtime = h.mtime ? h.mtime.getTime() / 1000 : 0;
  const mtime = pax?.mtime !== undefined ? Number(pax.mtime) : headerMtime;
  const atime = pax?.atime !== undefined ? Number(pax.atime) : mtime;
  if (!Number.isFinite(mtime) || !Number.isFinite(atime)) throw hostile(h.name, 'has an invalid time');
  const xattrs: [string, Buffer][] = [];
  if (pax) {
    const raw = pax[RAW_XATTRS];
    for (const [key, value] of Object.entries(pax)) {
      if (key.startsWith('SCHILY.xattr.')) {
        const name = key.slice('SCHILY.xattr.'.length);
        xattrs.push([name, raw?.get(name) ?? Buffer.from(value, 'utf8')]);
      } else if (key.startsWith('LIBARCHIVE.xattr.')) {
        let name: string;
        try {
          name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
        } catch {
          throw hostile(h.name, 'has a malformed LIBARCHIVE.xattr name');
        }
        xattrs.push([name, Buffer.from(value, 'base64')]);
      }
    }
  }
  return { mode: mode & 0o7777, uid, gid, atime, mtime, xattrs };
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_ID;
}

async function drain(entry: Entry): Promise<void> {
  for await (const _chunk of entry) {
    // discard: entries other than files carry no data we use
  }
}

async function applyEntry(ctx: Ctx, entry: Entry & { header: TarHeader }): Promise<void> {
  const h = entry.header;
  const type = h.type;
  let sparse: SparseEntry | undefined;
  if (type === 'file' || type === 'contiguous-file') {
    try {
      sparse = paxSparse(h.pax);
    } catch (err) {
      throw hostile(h.name, errMessage(err));
    }
    if (sparse?.name !== undefined) h.name = sparse.name;
    if (sparse && ctx.maxFileBytes !== undefined && sparse.realSize > ctx.maxFileBytes)
      throw new SnapshotError(
        `layer entry '${short(h.name)}' is a sparse file of ${sparse.realSize} bytes, more than the per-layer limit of ${ctx.maxFileBytes} (image.max_layer_uncompressed_bytes)`,
        Status.RESOURCE_EXHAUSTED,
      );
  }
  if (type !== 'file' && type !== 'contiguous-file') await drain(entry);
  if (!Number.isSafeInteger(h.size ?? 0)) throw hostile(h.name, 'has an invalid size');
  const segs = cleanEntryPath(h.name);
  const base = segs[segs.length - 1];

  if (base !== undefined && base.startsWith(WHITEOUT_PREFIX)) {
    if (type === 'file' || type === 'contiguous-file') await drain(entry);
    applyWhiteout(ctx, h.name, segs);
    return;
  }
  if (base === undefined) {
    if (type !== 'directory') throw hostile(h.name, 'would replace the layer root with a non-directory');
    setMeta(ctx, ctx.dest, ctx.root, h.name, headerMeta(h));
    return;
  }

  const meta = headerMeta(h);
  const parent = walkParents(ctx, h.name, segs, true);
  const abs = path.join(ctx.dest, ...segs);
  switch (type) {
    case 'file':
    case 'contiguous-file': {
      replace(parent, base, abs, false);
      const fd = fs.openSync(
        abs,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
        0o600,
      );
      parent.children!.set(base, { kind: 'file' });
      try {
        await writeData(fd, entry, h, sparse);
        fs.fchownSync(fd, meta.uid, meta.gid);
        fs.fchmodSync(fd, meta.mode); // after chown, which clears setuid/setgid
        setXattrs(ctx, abs, h.name, meta.xattrs); // after the data: writes clear security.capability
        fs.futimesSync(fd, meta.atime, meta.mtime);
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    case 'directory': {
      let node = parent.children!.get(base);
      if (!replace(parent, base, abs, true) || !node) {
        fs.mkdirSync(abs, 0o700);
        node = { kind: 'dir', children: new Map() };
        parent.children!.set(base, node);
      }
      setMeta(ctx, abs, node, h.name, meta);
      return;
    }
    case 'symlink': {
      if (!h.linkname) throw hostile(h.name, 'is a symlink without a target');
      if (h.linkname.includes('\0')) throw hostile(h.name, 'has a symlink target with a NUL byte');
      replace(parent, base, abs, false);
      fs.symlinkSync(h.linkname, abs);
      parent.children!.set(base, { kind: 'symlink' });
      fs.lchownSync(abs, meta.uid, meta.gid);
      setXattrs(ctx, abs, h.name, meta.xattrs);
      fs.lutimesSync(abs, meta.atime, meta.mtime);
      return;
    }
    case 'link': {
      if (!h.linkname) throw hostile(h.name, 'is a hardlink without a target');
      const targetSegs = cleanEntryPath(h.linkname, h.name);
      const target = lookup(ctx, h.name, targetSegs);
      if (target.kind === 'dir') throw hostile(h.name, `is a hardlink to a directory '${short(h.linkname)}'`);
      if (targetSegs.join('/') === segs.join('/')) throw hostile(h.name, 'is a hardlink to itself');
      replace(parent, base, abs, false);
      fs.linkSync(path.join(ctx.dest, ...targetSegs), abs);
      parent.children!.set(base, { kind: target.kind });
      return;
    }
    case 'character-device':
    case 'block-device':
    case 'fifo': {
      const ifmt =
        type === 'fifo'
          ? fs.constants.S_IFIFO
          : type === 'block-device'
            ? fs.constants.S_IFBLK
            : fs.constants.S_IFCHR;
      replace(parent, base, abs, false);
      native().mknod(abs, ifmt | meta.mode, h.devmajor ?? 0, h.devminor ?? 0);
      parent.children!.set(base, { kind: 'special' });
      fs.lchownSync(abs, meta.uid, meta.gid);
      fs.chmodSync(abs, meta.mode); // mknod applied the umask; abs is the node just made
      setXattrs(ctx, abs, h.name, meta.xattrs);
      fs.lutimesSync(abs, meta.atime, meta.mtime);
      return;
    }
    default:
      throw hostile(
        h.name,
        type === null
          ? 'has an unsupported type (old-GNU sparse, multi-volume or another non-POSIX type)'
          : `has an unsupported type '${String(type)}'`,
      );
  }
}

function applyWhiteout(ctx: Ctx, name: string, segs: string[]): void {
  const base = segs[segs.length - 1]!;
  const dirSegs = segs.slice(0, -1);
  const parent = walkParents(ctx, name, segs, true);
  const dirAbs = path.join(ctx.dest, ...dirSegs);
  if (base === OPAQUE_MARKER) {
    native().lsetxattr(dirAbs, OPAQUE_XATTR, Buffer.from('y'));
    return;
  }
  if (base.startsWith(WHITEOUT_META_PREFIX)) {
    // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) means nothing to overlayfs.
    ctx.log?.debug('skipping aufs metadata entry in layer', { entry: short(name) });
    return;
  }
  const hidden = base.slice(WHITEOUT_PREFIX.length);
  if (hidden === '' || hidden === '.' || hidden === '..') throw hostile(name, 'is a whiteout of nothing');
  const abs = path.join(dirAbs, hidden);
  replace(parent, hidden, abs, false);
  native().mknod(abs, fs.constants.S_IFCHR, 0, 0);
  parent.children!.set(hidden, { kind: 'special' });
}

/**
 * Returns the directory node that holds segs' last element, checking every component: a symlink
 * or non-directory rejects the entry; a missing directory is created (0755, root) when `create`.
 */
function walkParents(ctx: Ctx, name: string, segs: string[], create: boolean): Node {
  let cur = ctx.root;
  let abs = ctx.dest;
  for (let i = 0; i < segs.length - 1; i++) {
    const seg = segs[i]!;
    abs = path.join(abs, seg);
    let next = cur.children!.get(seg);
    if (!next) {
      if (!create)
        throw hostile(name, `refers to '${short(segs.slice(0, i + 1).join('/'))}' that this layer lacks`);
      fs.mkdirSync(abs, 0o755);
      next = { kind: 'dir', children: new Map() };
      cur.children!.set(seg, next);
    } else if (next.kind === 'symlink') {
      throw hostile(name, `goes through the symlink '${short(segs.slice(0, i + 1).join('/'))}'`);
    } else if (next.kind !== 'dir') {
      throw hostile(name, `has the non-directory '${short(segs.slice(0, i + 1).join('/'))}' as a parent`);
    }
    cur = next;
  }
  return cur;
}

/** The node at targetSegs (a hardlink target), which must exist in this layer. */
function lookup(ctx: Ctx, name: string, targetSegs: string[]): Node {
  if (targetSegs.length === 0) throw hostile(name, 'is a hardlink to the layer root');
  const parent = walkParents(ctx, name, targetSegs, false);
  const node = parent.children!.get(targetSegs[targetSegs.length - 1]!);
  if (!node) throw hostile(name, `is a hardlink to '${short(targetSegs.join('/'))}' that this layer lacks`);
  return node;
}

/**
 * Clears the way for a new node named `name` in `parent`. A directory over a directory is kept
 * (returns true: metadata is updated in place, as tar does); anything else is removed.
 */
function replace(parent: Node, name: string, abs: string, newIsDir: boolean): boolean {
  const existing = parent.children!.get(name);
  if (!existing) return false;
  if (existing.kind === 'dir' && newIsDir) return true;
  if (existing.kind === 'dir') fs.rmSync(abs, { recursive: true, force: true });
  else fs.unlinkSync(abs);
  parent.children!.delete(name);
  return false;
}

function setMeta(ctx: Ctx, abs: string, node: Node, name: string, meta: Meta): void {
  fs.lchownSync(abs, meta.uid, meta.gid);
  fs.chmodSync(abs, meta.mode); // abs is a directory this apply made (or the root)
  setXattrs(ctx, abs, name, meta.xattrs);
  node.times = { atime: meta.atime, mtime: meta.mtime };
}

function setXattrs(ctx: Ctx, abs: string, name: string, xattrs: [string, Buffer][]): void {
  for (const [key, value] of xattrs) {
    if (key.startsWith(OVERLAY_XATTR_PREFIX)) {
      ctx.log?.warn('dropping overlayfs xattr from layer entry', { entry: short(name), xattr: short(key) });
      continue;
    }
    try {
      native().lsetxattr(abs, key, value);
    } catch (err) {
      if (!hasErrno(err, 'ENOTSUP') && !hasErrno(err, 'EOPNOTSUPP')) throw err;
      ctx.log?.warn('file system does not support an xattr from the layer', {
        entry: short(name),
        xattr: short(key),
      });
    }
  }
}

/**
 * Streams an entry's data into fd in batches (HoleWriter: never more than ~512 KiB held), leaving
 * holes for long zero runs and for the gaps of a GNU sparse entry's map.
 */
async function writeData(
  fd: number,
  entry: Entry,
  h: TarHeader,
  sparse: SparseEntry | undefined,
): Promise<void> {
  const w = new HoleWriter(fd);
  if (!sparse) {
    for await (const chunk of entry) await w.write(chunk);
    await w.finish(w.offset);
    return;
  }
  const it = (entry as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let map = sparse.map;
  let first: Buffer = Buffer.alloc(0);
  let dataBytes = h.size ?? 0;
  if (!map) {
    const r = await readSparseMap1(it);
    map = r.map;
    first = r.rest;
    dataBytes -= r.consumed;
  }
  if (checkSparseMap(map, sparse.realSize) !== dataBytes)
    throw new Error('sparse map does not match the entry size');
  await writeSparseData(w, map, first, it);
  await w.finish(sparse.realSize);
}

/** Applies deferred directory times (children first) and measures the result. */
async function finish(ctx: Ctx): Promise<ApplyResult> {
  const seen = new Set<number>();
  let size = 0;
  let inodes = 0;
  const turn = timeSlices();
  const visit = async (abs: string, node: Node): Promise<void> => {
    if (node.children) {
      for (const [name, child] of node.children) await visit(path.join(abs, name), child);
    }
    if (node.times) fs.lutimesSync(abs, node.times.atime, node.times.mtime);
    const st = fs.lstatSync(abs);
    if (node.kind !== 'dir' && st.nlink > 1) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    size += st.blocks * 512;
    inodes++;
    await turn();
  };
  await visit(ctx.dest, ctx.root);
  return { size, inodes };
}
