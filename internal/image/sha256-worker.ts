// SHA-256 off the main thread. A pull hashes every byte twice (the compressed blob against its
// digest, the uncompressed tar against its diff_id): at 150 MB/s that is most of a second of the
// main thread per 200 MB. Here the bytes are copied into 1 MiB batches, which are handed (moved,
// not copied again) to one worker thread that keeps the hash state; a stream smaller than one batch
// is hashed on the spot, as it costs less than the round trip. At most MAX_INFLIGHT batches per
// hash wait in the worker: update() returns a promise to wait on when the worker is behind, so the
// memory held stays bounded. If the worker dies, the hashes it held fail (their pulls fail with
// INTERNAL) and the next hash starts a new worker.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { BerthError, Status } from '../errors';

export const BATCH = 1024 * 1024;
const MAX_INFLIGHT = 4;
const SPARE_MAX = 16;

// Plain JS, run with eval: the same code under ts-jest and from dist/.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'u') {
    let h = hashes.get(m.id);
    if (!h) hashes.set(m.id, (h = createHash('sha256')));
    h.update(new Uint8Array(m.buf, 0, m.len));
    parentPort.postMessage({ op: 'a', id: m.id, buf: m.buf }, [m.buf]);
  } else if (m.op === 'd') {
    const h = hashes.get(m.id) || createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ op: 'd', id: m.id, hex: h.digest('hex') });
  } else if (m.op === 'x') {
    hashes.delete(m.id);
  }
});
`;

type Reply = { op: 'a'; id: number; buf: ArrayBuffer } | { op: 'd'; id: number; hex: string };

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
  readonly spare: ArrayBuffer[] = [];

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      const job = this.jobs.get(m.id);
      if (m.op === 'a') {
        if (this.spare.length < SPARE_MAX) this.spare.push(m.buf);
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

  update(id: number, buf: ArrayBuffer, len: number): void {
    this.worker.postMessage({ op: 'u', id, buf, len }, [buf]);
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
  private buf: Buffer;
  private len = 0;
  private w: HashWorker | undefined;
  private id = 0;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private failure: Error | undefined;
  private result: ((hex: string) => void) | undefined;
  private reject: ((err: Error) => void) | undefined;
  private done = false;

  constructor() {
    this.buf = Buffer.allocUnsafe(BATCH);
  }

  /** Adds `chunk`; when the worker is behind, returns a promise to wait on before the next update. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(BATCH - this.len, chunk.length - off);
      this.buf.set(chunk.subarray(off, off + n), this.len);
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
    if (!this.w) return `sha256:${createHash('sha256').update(this.buf.subarray(0, this.len)).digest('hex')}`;
    if (this.len > 0) this.post();
    const w = this.w;
    const hex = await new Promise<string>((resolve, reject) => {
      this.result = resolve;
      this.reject = reject;
      w.digest(this.id);
    });
    return `sha256:${hex}`;
  }

  /** Abandons an unfinished hash (its stream failed): the worker forgets it. */
  drop(): void {
    if (this.done) return;
    this.done = true;
    if (this.w) this.w.close(this.id);
  }

  private post(): void {
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
    const ab = this.buf.buffer as ArrayBuffer;
    this.w.update(this.id, ab, this.len);
    this.inflight++;
    const next = this.w.spare.pop();
    this.buf = next ? Buffer.from(next, 0, BATCH) : Buffer.allocUnsafe(BATCH);
    this.len = 0;
  }
}
