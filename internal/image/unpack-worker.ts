// Worker-thread entry of the unpack pool: runs unpackLayer on the compressed chunks the pool sends,
// so decompression's stream plumbing, the diff_id hash, tar parsing and the file writes stay off
// the daemon's event loop. Log records and the result go back as messages.
import { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { Logger, type LogMeta } from '../log';
import { YoungGc } from '../util/young-gc';
import { unpackLayer } from './unpack-layer';
import { type FromWorker, type ToWorker, fromWire, toWire, wholeChunk } from './unpack-protocol';

const port = parentPort;
if (!port) throw new Error('unpack-worker.js runs only as a worker thread');
const post = (m: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(m, transfer);

/** A Logger whose records go to the pool, which logs them with the daemon's logger. */
class ForwardingLogger extends Logger {
  constructor() {
    super({ level: 3, format: 'text', silent: false, write: () => undefined });
  }
  override log(level: string, message: string, meta?: LogMeta): void {
    post({ type: 'log', level, message, ...(meta ? { meta } : {}) });
  }
}
const log = new ForwardingLogger();
/** dead zlib output and tar buffers are collected after this many compressed bytes (see YoungGc) */
const youngGc = new YoungGc(4 * 1024 * 1024);

/** A job's compressed chunks as a stream; each chunk read is credited back to the pool. */
class JobSource extends Readable {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private waiting = false;

  constructor(readonly id: number) {
    super({ highWaterMark: 512 * 1024 });
  }

  add(chunk: Buffer): void {
    this.queue.push(chunk);
    if (this.waiting) this.serve();
  }

  end(): void {
    this.ended = true;
    if (this.waiting) this.serve();
  }

  override _read(): void {
    this.serve();
  }

  private serve(): void {
    const chunk = this.queue.shift();
    this.waiting = false;
    if (chunk) {
      post({ type: 'credit', id: this.id, bytes: chunk.length });
      youngGc.add(chunk.length);
      this.push(chunk);
    } else if (this.ended) {
      this.push(null);
    } else {
      this.waiting = true;
    }
  }
}

/** Hands a whole received chunk's buffer back to the pool once gunzip is done with it. */
function recycle(chunk: Buffer): void {
  // only a whole chunk's own buffer (never a slice of a shared one: the rest would go with it)
  if (!wholeChunk(chunk)) return;
  const buffer = chunk.buffer as ArrayBuffer;
  post({ type: 'recycle', buffer }, [buffer]);
}

/** Jobs running in this worker, by id (the pool may run several here at once). */
const jobs = new Map<number, JobSource>();

port.on('message', (m: ToWorker) => {
  if (m.type === 'start') {
    const src = new JobSource(m.id);
    jobs.set(m.id, src);
    unpackLayer(src, m.dest, m.job, log, recycle).then(
      (result) => {
        jobs.delete(m.id);
        post({ type: 'done', id: m.id, result });
      },
      (err: unknown) => {
        jobs.delete(m.id);
        post({ type: 'failed', id: m.id, error: toWire(err) });
      },
    );
    return;
  }
  const src = jobs.get(m.id);
  if (!src) return; // a late message for a job already over
  if (m.type === 'data') src.add(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
  else if (m.type === 'end') src.end();
  else src.destroy(fromWire(m.error));
});
