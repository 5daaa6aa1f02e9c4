// Sparse writing for layer files. HoleWriter writes a file's data with positioned writes and leaves
// a hole (seeks over it, then sets the size) wherever the data has a run of at least HOLE_MIN zero
// bytes, or where a GNU sparse map says there is no data; the file reads back byte for byte the
// same, without the zeros taking disk space. The PAX sparse formats GNU tar writes (0.0, 0.1, 1.0)
// are decoded here; tar-stream hands their entries over as plain files with pax records.
import * as fs from 'node:fs';

/** Zero runs at least this long become holes (shorter ones are written). */
export const HOLE_MIN = 64 * 1024;
const BLOCK = 4096;
const BATCH = 512 * 1024;
const ZERO = Buffer.alloc(HOLE_MIN);
/** Longest sparse map accepted (entries); GNU tar's own maps are far smaller. */
export const MAX_SPARSE_ENTRIES = 1 << 16;

/** Whether b[start, end) is all zero bytes (end - start <= BLOCK); no allocation. */
function allZero(b: Buffer, start: number, end: number): boolean {
  if (end <= start) return true;
  if (b[start] !== 0 || b[end - 1] !== 0) return false;
  return b.compare(ZERO, 0, end - start, start, end) === 0;
}

const writev = (fd: number, bufs: Buffer[], pos: number): Promise<number> =>
  new Promise((resolve, reject) => fs.writev(fd, bufs, pos, (err, n) => (err ? reject(err) : resolve(n))));

export class HoleWriter {
  /** logical offset of the next byte */
  private pos = 0;
  private batch: Buffer[] = [];
  private batchStart = 0;
  private batchLen = 0;
  private zeroLen = 0;
  private zeroForced = false;
  /** bytes left as holes */
  holeBytes = 0;

  constructor(private readonly fd: number) {}

  /** Appends data at the current offset. */
  async write(chunk: Buffer): Promise<void> {
    let dataStart = 0;
    let off = 0;
    while (off < chunk.length) {
      const end = Math.min(chunk.length, off + (BLOCK - ((this.pos + off - dataStart) % BLOCK)));
      // (this.pos + off - dataStart) is the logical offset of chunk[off] once earlier data is added
      if (allZero(chunk, off, end)) {
        if (dataStart < off) await this.data(chunk.subarray(dataStart, off));
        this.zeros(end - off, false);
        dataStart = end;
      }
      off = end;
    }
    if (dataStart < chunk.length) await this.data(chunk.subarray(dataStart));
  }

  /** Moves forward to `offset`, leaving a hole in between (a sparse map's gap). */
  skipTo(offset: number): void {
    if (offset < this.pos) throw new Error('sparse map goes backwards');
    if (offset > this.pos) this.zeros(offset - this.pos, true);
  }

  /** Writes what is pending and gives the file its final size. */
  async finish(size: number): Promise<void> {
    if (this.zeroLen > 0 && !this.zeroForced && this.zeroLen < HOLE_MIN) this.fillZeros();
    await this.flush();
    if (this.zeroLen > 0) {
      this.holeBytes += this.zeroLen;
      this.zeroLen = 0;
    }
    if (this.holeBytes > 0 || size !== this.pos) fs.ftruncateSync(this.fd, size);
  }

  get offset(): number {
    return this.pos;
  }

  private zeros(n: number, forced: boolean): void {
    this.zeroLen += n;
    this.zeroForced ||= forced;
    this.pos += n;
  }

  /** Turns a pending short zero run into written zeros. */
  private fillZeros(): void {
    let left = this.zeroLen;
    if (this.batchLen === 0) this.batchStart = this.pos - left;
    while (left > 0) {
      const n = Math.min(left, ZERO.length);
      this.batch.push(ZERO.subarray(0, n));
      this.batchLen += n;
      left -= n;
    }
    this.zeroLen = 0;
    this.zeroForced = false;
  }

  private async data(buf: Buffer): Promise<void> {
    if (this.zeroLen > 0) {
      if (this.zeroForced || this.zeroLen >= HOLE_MIN) {
        await this.flush();
        this.holeBytes += this.zeroLen;
        this.zeroLen = 0;
        this.zeroForced = false;
      } else {
        this.fillZeros();
      }
    }
    if (this.batchLen === 0) this.batchStart = this.pos;
    this.batch.push(buf);
    this.batchLen += buf.length;
    this.pos += buf.length;
    if (this.batchLen >= BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    let bufs = this.batch;
    let at = this.batchStart;
    let left = this.batchLen;
    this.batch = [];
    this.batchLen = 0;
    while (left > 0) {
      const n = await writev(this.fd, bufs, at);
      left -= n;
      at += n;
      if (left === 0) break;
      // short write: drop what went out and retry the rest
      let skip = n;
      const rest: Buffer[] = [];
      for (const b of bufs) {
        if (skip >= b.length) skip -= b.length;
        else {
          rest.push(skip > 0 ? b.subarray(skip) : b);
          skip = 0;
        }
      }
      bufs = rest;
    }
  }
}

export interface SparseEntry {
  /** the file's real name when the format hides it (GNU.sparse.name) */
  name?: string;
  /** the file's apparent size */
  realSize: number;
  /** (offset, length) data segments; undefined for 1.0, whose map leads the entry's data */
  map?: [number, number][];
}

function num(s: string | undefined, what: string): number {
  if (s === undefined || !/^\d{1,19}$/.test(s.trim())) throw new Error(`invalid sparse ${what}`);
  const n = Number(s.trim());
  if (!Number.isSafeInteger(n)) throw new Error(`invalid sparse ${what}`);
  return n;
}

/** The PAX sparse description of an entry (formats 0.0, 0.1 and 1.0), or undefined for a plain file. */
export function paxSparse(pax: Record<string, string> | null | undefined): SparseEntry | undefined {
  if (!pax) return undefined;
  const name = pax['GNU.sparse.name'];
  if (pax['GNU.sparse.major'] !== undefined || pax['GNU.sparse.minor'] !== undefined) {
    if (pax['GNU.sparse.major'] !== '1' || pax['GNU.sparse.minor'] !== '0')
      throw new Error(`unsupported GNU sparse format ${pax['GNU.sparse.major']}.${pax['GNU.sparse.minor']}`);
    return { ...(name ? { name } : {}), realSize: num(pax['GNU.sparse.realsize'], 'realsize') };
  }
  const mapText = pax['GNU.sparse.map'];
  if (mapText === undefined) return undefined;
  const nums = mapText === '' ? [] : mapText.split(',').map((x) => num(x, 'map'));
  if (nums.length % 2 !== 0) throw new Error('sparse map has an odd number of values');
  const map: [number, number][] = [];
  for (let i = 0; i < nums.length; i += 2) map.push([nums[i]!, nums[i + 1]!]);
  const realSize = num(pax['GNU.sparse.size'] ?? pax['GNU.sparse.realsize'], 'size');
  return { ...(name ? { name } : {}), realSize, map };
}

/** Checks a map: sorted, not overlapping, inside the file, at most MAX_SPARSE_ENTRIES. Returns its data bytes. */
export function checkSparseMap(map: [number, number][], realSize: number): number {
  if (map.length > MAX_SPARSE_ENTRIES)
    throw new Error(`sparse map has more than ${MAX_SPARSE_ENTRIES} entries`);
  let end = 0;
  let data = 0;
  for (const [off, len] of map) {
    if (off < end) throw new Error('sparse map entries overlap or are out of order');
    end = off + len;
    if (end > realSize) throw new Error('sparse map reaches past the file size');
    data += len;
  }
  return data;
}

/**
 * Reads a format-1.0 sparse map from the start of an entry's data: decimal numbers, one per line
 * (count, then offset/length pairs), padded to a 512-byte block. Returns the map and the data bytes
 * that followed it in the last chunk read.
 */
export async function readSparseMap1(
  it: AsyncIterator<Buffer>,
): Promise<{ map: [number, number][]; consumed: number; rest: Buffer }> {
  const nums: number[] = [];
  let want = -1;
  let cur = '';
  let consumed = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error('sparse map truncated');
    const chunk = r.value;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 0x0a) {
        nums.push(num(cur, 'map'));
        cur = '';
        if (want < 0) {
          want = nums[0]!;
          if (want > MAX_SPARSE_ENTRIES)
            throw new Error(`sparse map has more than ${MAX_SPARSE_ENTRIES} entries`);
          nums.length = 0;
        }
        if (want >= 0 && nums.length === want * 2) {
          const used = consumed + i + 1;
          const padded = Math.ceil(used / 512) * 512;
          const map: [number, number][] = [];
          for (let k = 0; k < nums.length; k += 2) map.push([nums[k]!, nums[k + 1]!]);
          // skip the padding, which may reach into later chunks
          let rest = chunk.subarray(Math.min(chunk.length, i + 1 + (padded - used)));
          let skip = padded - (consumed + chunk.length);
          while (skip > 0) {
            const n = await it.next();
            if (n.done) throw new Error('sparse map truncated');
            rest = n.value.subarray(Math.min(skip, n.value.length));
            skip -= n.value.length;
          }
          return { map, consumed: padded, rest };
        }
      } else {
        if (c < 0x30 || c > 0x39 || cur.length > 19) throw new Error('malformed sparse map');
        cur += String.fromCharCode(c);
      }
    }
    consumed += chunk.length;
    if (consumed > 64 * 1024 * 1024) throw new Error('sparse map too long');
  }
}

/** Writes `data` (the packed data of a sparse entry) into its map's segments. */
export async function writeSparseData(
  w: HoleWriter,
  map: [number, number][],
  first: Buffer,
  it: AsyncIterator<Buffer>,
): Promise<void> {
  let seg = 0;
  let left = 0;
  const take = async (chunk: Buffer): Promise<void> => {
    let off = 0;
    while (off < chunk.length) {
      while (left === 0) {
        if (seg >= map.length) throw new Error('sparse entry has more data than its map');
        const [o, l] = map[seg++]!;
        w.skipTo(o);
        left = l;
      }
      const n = Math.min(left, chunk.length - off);
      await w.write(chunk.subarray(off, off + n));
      off += n;
      left -= n;
    }
  };
  await take(first);
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    await take(r.value);
  }
  if (left > 0) throw new Error('sparse entry has less data than its map');
  while (seg < map.length) {
    const [o, l] = map[seg++]!;
    if (l > 0) throw new Error('sparse entry has less data than its map');
    w.skipTo(o);
  }
}
