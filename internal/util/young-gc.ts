// Collects the young generation after every `everyBytes` of streamed data. A stream that moves
// hundreds of MB through short-lived Buffers (a layer download, its decompression) leaves their
// backing stores for V8 to free, and V8 frees them only when a collection runs: left to itself it
// lets ~64 MB of dead buffers pile up and then starts a full (major) collection. Measured in
// paired pulls of the pull benchmark's 210 MB `issue` image (fresh daemons, 5 each): the daemon's
// CPU time fell from 2.48 to 1.96 s and its peak RSS from 186 to 165 MB with a scavenge every 8 MB
// on the main thread and every 4 MB in the unpack worker. A scavenge took 0.2 ms p50 (50 of them
// beside 200 000 live objects; the first, which promotes survivors, 7 ms).
import { exposedGc } from './memory-relief';

export class YoungGc {
  private since = 0;

  constructor(private readonly everyBytes: number) {}

  /** Counts `n` bytes streamed; runs a scavenge once `everyBytes` have passed since the last. */
  add(n: number): void {
    this.since += n;
    if (this.since < this.everyBytes) return;
    this.since = 0;
    exposedGc()({ type: 'minor' });
  }
}
