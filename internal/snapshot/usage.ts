// Disk use of a directory tree, measured the way `du` does: st_blocks * 512 over distinct inodes
// (hardlinks count once), the top directory included. Synchronous lstat/readdir (a few
// microseconds each, far cheaper than thread-pool round trips) in slices: the walk gives the event
// loop back whenever it has held it for `sliceMs` (default 2 ms), so even a big tree never stalls
// the daemon for longer than that. Only background work calls this (layer unpacking, id-mapped
// copies, the snapshotter's usage refresher); no RPC walks a tree.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Usage } from './types';

/** How many entries are visited between clock checks. */
const CHECK_EVERY = 64;
export const DEFAULT_SLICE_MS = 2;

export interface DiskUsageOptions {
  /** give the event loop back after holding it this long (ms) */
  sliceMs?: number;
  /** stop early (the result is then partial): checked at every slice */
  signal?: AbortSignal;
}

export async function diskUsage(top: string, opts: DiskUsageOptions = {}): Promise<Usage> {
  const sliceNs = BigInt(Math.round((opts.sliceMs ?? DEFAULT_SLICE_MS) * 1e6));
  const seen = new Set<number>();
  let bytes = 0;
  let inodes = 0;
  let work = 0;
  let sliceStart = process.hrtime.bigint();
  const count = (st: fs.Stats): void => {
    if (!st.isDirectory() && st.nlink > 1) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    bytes += st.blocks * 512;
    inodes++;
  };
  const sliceUsed = (): boolean =>
    ++work % CHECK_EVERY === 0 && process.hrtime.bigint() - sliceStart >= sliceNs;
  const yieldNow = async (): Promise<void> => {
    await yieldToLoop();
    opts.signal?.throwIfAborted();
    sliceStart = process.hrtime.bigint();
  };
  // Entries can vanish while we walk a live container's upper dir: skip them.
  const lstat = (p: string): fs.Stats | undefined => fs.lstatSync(p, { throwIfNoEntry: false });

  const topSt = lstat(top);
  if (!topSt) return { bytes: 0, inodes: 0 };
  count(topSt);
  if (!topSt.isDirectory()) return { bytes, inodes };
  const dirs = [top];
  while (dirs.length > 0) {
    const dir = dirs.pop()!;
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw err;
    }
    if (sliceUsed()) await yieldNow();
    for (const d of names) {
      const p = path.join(dir, d.name);
      const st = lstat(p);
      if (!st) continue;
      count(st);
      if (st.isDirectory()) dirs.push(p);
      if (sliceUsed()) await yieldNow();
    }
  }
  return { bytes, inodes };
}
