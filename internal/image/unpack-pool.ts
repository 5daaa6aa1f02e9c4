// Runs layer unpacks (internal/image/unpack-layer.ts) in worker threads: at most `workers` threads,
// a new job going to an idle one, else to a new one while under the bound, else to the least busy
// (a worker runs several at once). The main thread only moves the compressed bytes over in 1 MiB
// chunks whose buffers are transferred (and handed back for reuse once gunzip is done with them): a
// blob download gathers its body into such buffers (takeChunk, http1-get.ts), which move as they
// are; other sources' bytes are copied into them. It stops reading the source while more than
// IN_FLIGHT_HIGH bytes wait in the worker, so the download keeps its backpressure. Workers start on
// demand and end after `idleMs` without a job, so an idle daemon holds none. Small layers (under
// MIN_WORKER_BYTES), and all of them with `workers: 0` or when the worker script is absent (the
// daemon runs from its TypeScript sources, as in unit tests), unpack in the calling thread.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { BerthError, errMessage, Status } from '../errors';
import type { Logger } from '../log';
import { YoungGc } from '../util/young-gc';
import { type UnpackLayerJob, type UnpackLayerResult, unpackLayer } from './unpack-layer';
import { ChunkGatherer } from './chunk-gatherer';
import { CHUNK, type FromWorker, type ToWorker, fromWire, toWire, wholeChunk } from './unpack-protocol';

export { CHUNK };
const IN_FLIGHT_HIGH = 8 * CHUNK;
const IN_FLIGHT_LOW = 4 * CHUNK;
/** The main thread's dead socket buffers are collected after this many bytes (see YoungGc). */
const MAIN_GC_BYTES = 8 * CHUNK;
/**
 * A layer smaller than this unpacks in the calling thread: starting a worker (a fresh isolate that
 * loads the unpack code) costs more than the layer. Measured on a busybox image (one 1 MB layer)
 * pulled into a fresh daemon: 236 ms on the main thread, 340 ms through a worker.
 */
export const MIN_WORKER_BYTES = 4 * CHUNK;
/** Chunk buffers kept for reuse: what is in flight for a few layers. */
const SPARE_MAX = 16;

export interface UnpackPoolOptions {
  /** worker threads at most; 0 unpacks in the calling thread */
  workers: number;
  log: Logger;
  /** a worker with no job for this long ends (default 1 s) */
  idleMs?: number;
  /** the worker's script (default: unpack-worker.js beside this module) */
  script?: string;
  /** layers smaller than this (compressed) unpack in the calling thread (default MIN_WORKER_BYTES) */
  minWorkerBytes?: number;
}

interface PoolWorker {
  worker: Worker;
  /** jobs running on it */
  jobs: number;
  idleTimer?: NodeJS.Timeout;
}

export class UnpackPool {
  private readonly script: string | undefined;
  private readonly workers: PoolWorker[] = [];
  private seq = 0;
  private closed = false;
  private readonly youngGc = new YoungGc(MAIN_GC_BYTES);
  /** chunk buffers the workers handed back, for the next chunks (dropped with the last worker) */
  private spare: ArrayBuffer[] = [];

  constructor(private readonly opts: UnpackPoolOptions) {
    const script = opts.script ?? path.join(__dirname, 'unpack-worker.js');
    this.script = opts.workers > 0 && existsSync(script) ? script : undefined;
  }

  /** Whether unpacks run in worker threads. */
  get threaded(): boolean {
    return this.script !== undefined;
  }

  /** Live workers (busy or idle). */
  get size(): number {
    return this.workers.length;
  }

  /** Chunk buffers handed back by the workers, waiting to carry the next chunks. */
  get spareChunks(): number {
    return this.spare.length;
  }

  /**
   * A CHUNK-byte buffer for a download to gather bytes into: one a worker handed back, else fresh.
   * A whole chunk of this size that reaches run() moves to the worker as it is (no copy).
   */
  takeChunk(): Buffer {
    const reuse = this.spare.pop();
    return reuse ? Buffer.from(reuse) : Buffer.allocUnsafeSlow(CHUNK);
  }

  /**
   * Unpacks the compressed layer stream `src` into the empty dir `dest` (see unpackLayer). When it
   * settles, nothing writes to `dest` any more; on failure `src` is destroyed.
   */
  async run(src: Readable, dest: string, job: UnpackLayerJob): Promise<UnpackLayerResult> {
    if (!this.script || this.closed || job.compressedBytes < (this.opts.minWorkerBytes ?? MIN_WORKER_BYTES))
      return unpackLayer(src, dest, job, this.opts.log);
    const w = this.acquire();
    try {
      return await this.runOn(w, src, dest, job);
    } catch (err) {
      src.destroy();
      throw err;
    } finally {
      this.release(w);
    }
  }

  /** Ends the idle workers; busy ones end when their last job settles. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.filter((w) => w.jobs === 0).map((w) => this.end(w)));
  }

  private runOn(w: PoolWorker, src: Readable, dest: string, job: UnpackLayerJob): Promise<UnpackLayerResult> {
    const id = ++this.seq;
    const post = (m: ToWorker, transfer?: ArrayBuffer[]): void => w.worker.postMessage(m, transfer);
    return new Promise<UnpackLayerResult>((resolve, reject) => {
      let inFlight = 0;
      let sourceOver = false;
      const send = (chunk: Uint8Array): void =>
        post({ type: 'data', id, chunk }, [chunk.buffer as ArrayBuffer]);
      // pieces of other sizes are copied into chunk buffers of the pool's
      const batch = new ChunkGatherer(() => this.takeChunk(), send);
      const onData = (data: Buffer): void => {
        inFlight += data.length;
        this.youngGc.add(data.length);
        if (wholeChunk(data)) {
          // a chunk buffer of its own (takeChunk, or a file read of CHUNK bytes): it moves over
          batch.flush();
          send(data);
        } else {
          batch.add(data);
        }
        if (inFlight > IN_FLIGHT_HIGH) src.pause();
      };
      const onEnd = (): void => {
        sourceOver = true;
        batch.flush();
        post({ type: 'end', id });
      };
      const onSourceError = (err: Error): void => {
        if (sourceOver) return;
        sourceOver = true;
        post({ type: 'abort', id, error: toWire(err) });
      };
      const onClose = (): void => {
        if (sourceOver) return;
        sourceOver = true;
        post({ type: 'abort', id, error: { message: 'the layer stream closed before its end' } });
      };
      const onMessage = (m: FromWorker): void => {
        if (m.type === 'log' || m.type === 'recycle' || m.id !== id) return;
        if (m.type === 'credit') {
          inFlight -= m.bytes;
          if (inFlight <= IN_FLIGHT_LOW && src.isPaused() && !sourceOver) src.resume();
        } else if (m.type === 'done') {
          settle(undefined, m.result);
        } else {
          settle(fromWire(m.error));
        }
      };
      const onWorkerError = (err: Error): void =>
        settle(new BerthError(Status.INTERNAL, `unpack worker failed: ${errMessage(err)}`));
      const onExit = (code: number): void =>
        settle(new BerthError(Status.INTERNAL, `unpack worker exited with code ${code}`));
      const listen = (op: 'on' | 'off'): void => {
        w.worker[op]('message', onMessage);
        w.worker[op]('error', onWorkerError);
        w.worker[op]('exit', onExit);
        src[op]('error', onSourceError);
        src[op]('close', onClose);
        src[op]('end', onEnd);
      };
      const settle = (err: Error | undefined, result?: UnpackLayerResult): void => {
        listen('off');
        src.off('data', onData);
        if (err) reject(err);
        else resolve(result as UnpackLayerResult);
      };
      listen('on');
      post({ type: 'start', id, dest, job });
      // a source that failed or closed before this job began (a small layer's download can be over
      // by the time its staged dir exists) emits nothing more: its end is known now
      if (src.errored) onSourceError(src.errored);
      else if (src.destroyed && !src.readableEnded) onClose();
      src.on('data', onData);
    });
  }

  /** A worker for one more job: an idle one, else a new one while under the bound, else the least busy. */
  private acquire(): PoolWorker {
    let best: PoolWorker | undefined;
    for (const w of this.workers) if (!best || w.jobs < best.jobs) best = w;
    if (!best || (best.jobs > 0 && this.workers.length < this.opts.workers)) {
      const worker = new Worker(this.script as string);
      // an error between jobs (none is expected) ends the worker; the next job gets another
      worker.on('error', () => undefined);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'log') this.opts.log.log(m.level, m.message, m.meta);
        else if (m.type === 'recycle' && m.buffer.byteLength === CHUNK && this.spare.length < SPARE_MAX)
          this.spare.push(m.buffer);
      });
      best = { worker, jobs: 0 };
      const w = best;
      worker.on('exit', () => this.forget(w));
      this.workers.push(w);
    }
    clearTimeout(best.idleTimer);
    if (best.jobs++ === 0) best.worker.ref();
    return best;
  }

  private release(w: PoolWorker): void {
    if (--w.jobs > 0) return;
    if (this.closed) {
      void this.end(w);
      return;
    }
    w.worker.unref(); // an idle worker does not keep the daemon alive
    w.idleTimer = setTimeout(() => void this.end(w), this.opts.idleMs ?? 1000);
    w.idleTimer.unref();
  }

  private forget(w: PoolWorker | undefined): void {
    const i = w ? this.workers.indexOf(w) : -1;
    if (i >= 0) this.workers.splice(i, 1);
    if (this.workers.length === 0) this.spare = [];
  }

  private async end(w: PoolWorker): Promise<void> {
    clearTimeout(w.idleTimer);
    this.forget(w);
    await w.worker.terminate().catch(() => undefined);
  }
}
