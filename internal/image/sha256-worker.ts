// SHA-256 off the main thread. A pull hashes every byte twice (the compressed blob against its
// digest, the uncompressed tar against its diff_id): at 150 MB/s that is most of a second of the
// main thread per 200 MB. Here the bytes are copied into 1 MiB slots of a buffer shared with one
// worker thread, which keeps the hash state; only the slot's number crosses over (no transfer, no
// allocation per batch); a stream smaller than one batch is hashed on the spot, as it costs less
// than the round trip. When every slot is taken, a batch goes in a buffer of its own (copied over). At most MAX_INFLIGHT batches per
// hash wait in the worker: update() returns a promise to wait on when the worker is behind, so the
// memory held stays bounded. If the worker dies, the hashes it held fail (their pulls fail with
// INTERNAL) and the next hash starts a new worker.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { BerthError, Status } from '../errors';

export const BATCH = 1024 * 1024;
const MAX_INFLIGHT = 4;

// Plain JS, run with eval: the same code under ts-jest and from dist/.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const shared = new Uint8Array(workerData.sab);
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'u') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('sha256')));
    if (m.slot >= 0) h.update(shared.subarray(m.slot * workerData.batch, m.slot * workerData.batch + m.len));
    else h.update(m.bytes);
    parentPort.postMessage({ op: 'a', id: m.id, slot: m.slot });
  } else if (m.op === 'd') {
    const h = hashes.get(m.id) || createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ op: 'd', id: m.id, hex: h.digest('hex') });
  } else if (m.op === 'x') {
    hashes.delete(m.id);
  }
});
`;
const SLOTS = 32;

type Reply = { op: 'a'; id: number; slot: number } | { op: 'd'; id: number; hex: string };

interface JobHooks {
  acked(): void;
  digested(hex: string): void;
  failed(err: Error): void;
}

class HashWorker {
  private readonly worker: Worker;
  private readonly jobs = new Map<number, JobHooks>();
  private nextId = 1;
  dead = false;
  private readonly sab = new SharedArrayBuffer(SLOTS * BATCH);
  private readonly free: number[] = Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i);

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sab: this.sab, batch: BATCH } });
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      const job = this.jobs.get(m.id);
      if (m.op === 'a') {
        if (m.slot >= 0) this.free.push(m.slot);
        job?.acked();
      } else {
        this.jobs.delete(m.id);
        this.idle();
        job?.digested(m.hex);
      }
    });
    const die = (err: Error): void => {
      if (this.dead) return;
      this.dead = true;
      const failure = new BerthError(Status.INTERNAL, `sha256 worker failed: ${err.message}`);
      for (const job of this.jobs.values()) job.failed(failure);
      this.jobs.clear();
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`exited with code ${code}`)));
  }

  open(hooks: JobHooks): number {
    const id = this.nextId++;
    this.jobs.set(id, hooks);
    this.worker.ref(); // pending replies keep the process alive
    return id;
  }

  close(id: number): void {
    if (!this.jobs.delete(id)) return;
    this.worker.postMessage({ op: 'x', id });
    this.idle();
  }

  /** A free slot (its number and a view of it), or undefined when all are taken. */
  takeSlot(): { slot: number; view: Buffer } | undefined {
    const slot = this.free.pop();
    if (slot === undefined) return undefined;
    return { slot, view: Buffer.from(this.sab, slot * BATCH, BATCH) };
  }

  giveSlot(slot: number): void {
    this.free.push(slot);
  }

  /** Hashes `len` bytes of `slot` (freed when the worker is done), or of `bytes` (copied over). */
  update(id: number, slot: number, len: number, bytes?: Buffer): void {
    this.worker.postMessage(slot >= 0 ? { op: 'u', id, slot, len } : { op: 'u', id, slot: -1, bytes });
  }

  digest(id: number): void {
    this.worker.postMessage({ op: 'd', id });
  }

  private idle(): void {
    if (this.jobs.size === 0) this.worker.unref();
  }
}

let shared: HashWorker | undefined;
function worker(): HashWorker {
  if (!shared || shared.dead) shared = new HashWorker();
  return shared;
}

/** One SHA-256, fed in order with update() and finished with digest() (or abandoned with drop()). */
export class Sha256 {
  /** the batch being filled: a slot of the shared buffer (slot >= 0) or `own` (slot -1) */
  private cur: { slot: number; view: Buffer } | undefined;
  private own: Buffer | undefined;
  private len = 0;
  private w: HashWorker | undefined;
  private id = 0;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private result: ((hex: string) => void) | undefined;
  private reject: ((err: Error) => void) | undefined;
  private done = false;

  /** Adds `chunk`; when the worker is behind, returns a promise to wait on before the next update. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    let off = 0;
    while (off < chunk.length) {
      const cur = this.cur ?? this.take();
      const n = Math.min(BATCH - this.len, chunk.length - off);
      cur.view.set(chunk.subarray(off, off + n), this.len);
      this.len += n;
      off += n;
      if (this.len === BATCH) this.post();
    }
    if (this.inflight < MAX_INFLIGHT) return undefined;
    return new Promise<void>((resolve) => this.waiters.push(resolve)).then(() => {
      if (this.failure) throw this.failure;
    });
  }

  /** `sha256:<hex>` of everything added. */
  async digest(): Promise<string> {
    if (this.failure) throw this.failure;
    this.done = true;
    if (!this.w) {
      // nothing went to the worker: under one batch, hashed here (the first batch is never a slot)
      const bytes = this.cur ? this.cur.view.subarray(0, this.len) : Buffer.alloc(0);
      this.cur = undefined;
      return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    }
    if (this.cur) this.post();
    const w = this.w;
    const hex = await new Promise<string>((resolve, reject) => {
      this.result = resolve;
      this.reject = reject;
      w.digest(this.id);
    });
    return `sha256:${hex}`;
  }

  /** Abandons an unfinished hash (its stream failed): the worker forgets it, its slot is freed. */
  drop(): void {
    if (this.done) return;
    this.done = true;
    if (this.cur && this.cur.slot >= 0) this.w?.giveSlot(this.cur.slot);
    this.cur = undefined;
    if (this.w) this.w.close(this.id);
  }

  /** A batch to fill: a free slot once the worker is in use, else this hash's own buffer. */
  private take(): { slot: number; view: Buffer } {
    this.cur = (this.w && !this.w.dead ? this.w.takeSlot() : undefined) ?? {
      slot: -1,
      view: (this.own ??= Buffer.allocUnsafe(BATCH)),
    };
    this.len = 0;
    return this.cur;
  }

  private post(): void {
    const cur = this.cur;
    if (!cur) return;
    if (!this.w) {
      const w = worker();
      this.w = w;
      this.id = w.open({
        acked: () => {
          this.inflight--;
          this.waiters.shift()?.();
        },
        digested: (hex) => this.result?.(hex),
        failed: (err) => {
          this.failure = err;
          this.reject?.(err);
          for (const wake of this.waiters.splice(0)) wake();
        },
      });
    }
    // a slot passes to the worker until its ack; our own buffer is copied over and reused at once
    if (cur.slot >= 0) this.w.update(this.id, cur.slot, this.len);
    else this.w.update(this.id, -1, this.len, cur.view.subarray(0, this.len));
    this.inflight++;
    this.cur = undefined;
    this.len = 0;
  }
}
