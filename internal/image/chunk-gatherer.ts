// Gathers bytes that arrive in small pieces into whole chunk buffers: the blob download
// (http1-get.ts) gathers its socket reads, and the unpack pool the pieces of any other source.
// Buffers come from `take` (the pool's recycled ones, so no fresh memory per chunk) and go out
// through `emit` once full, or partly full on flush().
export class ChunkGatherer {
  private cur: Buffer | undefined;
  private filled = 0;

  constructor(
    private readonly take: () => Buffer,
    private readonly emit: (chunk: Buffer) => void,
  ) {}

  /** Bytes waiting in the current chunk. */
  get pending(): number {
    return this.filled;
  }

  /** Copies buf[start, end) in, emitting each chunk that fills up. */
  add(buf: Uint8Array, start = 0, end = buf.length): void {
    let s = start;
    while (s < end) {
      this.cur ??= this.take();
      const n = Math.min(end - s, this.cur.length - this.filled);
      this.cur.set(buf.subarray(s, s + n), this.filled);
      this.filled += n;
      s += n;
      if (this.filled === this.cur.length) this.flush();
    }
  }

  /** Emits what the current chunk holds (a view of its first bytes when not full). */
  flush(): void {
    const cur = this.cur;
    if (!cur || this.filled === 0) return;
    const chunk = this.filled === cur.length ? cur : cur.subarray(0, this.filled);
    this.cur = undefined;
    this.filled = 0;
    this.emit(chunk);
  }
}
