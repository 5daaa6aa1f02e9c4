// Reads one file out of an image's layer tars (the verified blobs of the content store), as the
// merged rootfs would show it: the topmost layer that has the path wins, OCI whiteouts (`.wh.name`)
// hide it, opaque markers (`.wh..wh..opq`) hide everything below, and symlinks (also in parent
// directories) are followed inside the image root only ('..' stops at '/'), at most 40 hops.
import * as posix from 'node:path/posix';
import type { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import { failedPrecondition } from '../errors';

const MAX_HOPS = 40;
const MAX_FILE = 16 * 1024 * 1024;
const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** What one layer says about a path. */
export type LayerVerdict =
  | { kind: 'file'; data: Buffer }
  | { kind: 'link'; target: string } // the path (or a parent of it) is a symlink/hardlink: resolve `target` instead
  | { kind: 'gone' } // whited out, or a parent is not a directory
  | { kind: 'opaque' } // not here, and layers below are hidden
  | { kind: 'absent' };

/** Opens a layer's tar stream (decompressed), bottom layer first index. */
export type LayerOpener = (index: number) => Promise<Readable>;

/** Normalises a path inside the image: absolute, no '..' above the root, no trailing slash. */
export function cleanPath(p: string): string {
  return posix.normalize(posix.join('/', p)).replace(/\/+$/, '') || '/';
}

function entryPath(name: string): string {
  return cleanPath(name.replace(/^\.\//, ''));
}

/**
 * Scans one layer tar for `target`. Entries later in a tar override earlier ones, so the whole tar
 * is read unless the path is found as a regular file (the usual case: read and stop).
 */
export async function scanLayer(tar: Readable, target: string): Promise<LayerVerdict> {
  const parents: string[] = [];
  for (let d = posix.dirname(target); d !== '/'; d = posix.dirname(d)) parents.push(d);
  parents.push('/');
  let verdict: LayerVerdict = { kind: 'absent' };
  const ex = tarExtract();
  return new Promise<LayerVerdict>((resolve, reject) => {
    let done = false;
    const finish = (v: LayerVerdict | Error): void => {
      if (done) return;
      done = true;
      tar.destroy();
      ex.destroy();
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    ex.on('entry', (header, stream, next) => {
      const p = entryPath(header.name);
      const base = posix.basename(p);
      const dir = posix.dirname(p);
      const skip = (): void => {
        stream.on('end', next);
        stream.resume();
      };
      if (base === OPAQUE) {
        // An opaque marker on the target's own dir or a parent hides lower layers' copies.
        if (dir === target || parents.includes(dir)) {
          if (verdict.kind === 'absent') verdict = { kind: 'opaque' };
        }
        return skip();
      }
      if (base.startsWith(WH)) {
        const hidden = posix.join(dir, base.slice(WH.length));
        if (hidden === target || parents.includes(hidden)) verdict = { kind: 'gone' };
        return skip();
      }
      if (p === target) {
        if (header.type === 'symlink' || header.type === 'link') {
          const ln = header.linkname ?? '';
          // Symlinks are relative to their directory; hardlink names are relative to the root.
          verdict = {
            kind: 'link',
            target: header.type === 'symlink' ? cleanPath(posix.resolve(dir, ln)) : entryPath(ln),
          };
          return skip();
        }
        if (header.type === 'file' || header.type === 'contiguous-file' || !header.type) {
          if ((header.size ?? 0) > MAX_FILE) {
            finish(failedPrecondition(`${target} in the image is larger than ${MAX_FILE} bytes`));
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => finish({ kind: 'file', data: Buffer.concat(chunks) }));
          stream.on('error', (e) => finish(e));
          return;
        }
        verdict = { kind: 'gone' }; // a directory or device: not a readable file
        return skip();
      }
      if (parents.includes(p) && p !== '/') {
        if (header.type === 'symlink') {
          const resolved = cleanPath(posix.resolve(dir, header.linkname ?? ''));
          verdict = { kind: 'link', target: cleanPath(posix.join(resolved, posix.relative(p, target))) };
        } else if (header.type !== 'directory') {
          verdict = { kind: 'gone' };
        } else if (verdict.kind === 'link' || verdict.kind === 'gone') {
          // A directory re-created after a whiteout/link/file in the same layer hides lower copies.
          verdict = { kind: 'opaque' };
        }
      }
      skip();
    });
    ex.on('finish', () => finish(verdict));
    ex.on('error', (e) => finish(e));
    tar.on('error', (e) => finish(e));
    tar.pipe(ex);
  });
}

/**
 * Resolves and reads `path` through layers 0..n-1 (0 at the bottom). Returns undefined when the
 * merged view has no regular file there.
 */
export async function readFromLayers(
  layerCount: number,
  open: LayerOpener,
  path: string,
): Promise<Buffer | undefined> {
  let target = cleanPath(path);
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    let next: string | undefined;
    for (let i = layerCount - 1; i >= 0; i--) {
      const v = await scanLayer(await open(i), target);
      if (v.kind === 'file') return v.data;
      if (v.kind === 'gone' || v.kind === 'opaque') return undefined;
      if (v.kind === 'link') {
        next = v.target;
        break;
      }
    }
    if (next === undefined) return undefined;
    target = next;
  }
  throw failedPrecondition(`too many levels of symbolic links resolving ${path} in the image`);
}
