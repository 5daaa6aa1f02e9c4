// Disk use of a directory tree, measured the way `du` does: st_blocks * 512 over distinct inodes
// (hardlinks count once), the top directory included. Synchronous lstat/readdir (a few
// microseconds each, far cheaper than thread-pool round trips) in slices: the walk gives the event
// loop back whenever it has held it for `sliceMs` (default 2 ms), so even a big tree never stalls
// the daemon for longer than that. Walks made one after another (the usage refresher's many small
// upper dirs) share one Slicer, so their sum is sliced too. Only background work calls this (layer
// unpacking, id-mapped copies, the snapshotter's usage refresher); no RPC walks a tree.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_SLICE_MS, Slicer } from '../util/slicer';
import type { Usage } from './types';

/** How many entries are visited between clock checks. */
const CHECK_EVERY = 16;

export interface DiskUsageOptions {
  /** give the event loop back after holding it this long (ms) */
  sliceMs?: number;
  /** stop early (the result is then partial): checked at every slice */
  signal?: AbortSignal;
  /** the job's slicer, when this walk is one of several (sliceMs and signal are then its own) */
  slicer?: Slicer;
}

export async function diskUsage(top: string, opts: DiskUsageOptions = {}): Promise<Usage> {
  const slicer = opts.slicer ?? new Slicer(opts.sliceMs ?? DEFAULT_SLICE_MS, opts.signal);
  const seen = new Set<number>();
  let bytes = 0;
  let inodes = 0;
  let work = 0;
  const count = (st: fs.Stats): void => {
    if (!st.isDirectory() && st.nlink > 1) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    bytes += st.blocks * 512;
    inodes++;
  };
  const sliceUsed = (): boolean => ++work % CHECK_EVERY === 0 && slicer.used();
  const yieldNow = (): Promise<void> => slicer.pause();
  // Entries can vanish while we walk a live container's upper dir: skip them.
  const lstat = (p: string): fs.Stats | undefined => fs.lstatSync(p, { throwIfNoEntry: false });

  await slicer.pause();
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
