// The messages between the unpack pool (main thread) and an unpack worker, which may run several
// jobs at once (each message names its job). The compressed bytes go over in chunks whose
// ArrayBuffers are transferred, not copied; the worker gives credit back as the unpack consumes
// them, so the pool keeps a bounded amount in flight and the download feels backpressure as it did
// in one thread; once gunzip is done with a chunk its buffer goes back to the pool to carry a later
// one, so a pull does not fault in fresh memory for every MiB.
import { BerthError, errMessage, isBerthError } from '../errors';
import type { LogMeta } from '../log';
import type { UnpackLayerJob, UnpackLayerResult } from './unpack-layer';

/** Bytes in one chunk the pool sends (the last of a layer may be shorter). */
export const CHUNK = 1024 * 1024;

/**
 * Whether `data` spans a whole CHUNK-byte ArrayBuffer of its own, so that buffer can be transferred
 * (to the worker, or back to the pool) without taking other bytes with it: small Buffers share
 * pooled ArrayBuffers, which this excludes by size.
 */
export const wholeChunk = (data: Uint8Array): boolean =>
  data.byteLength === CHUNK && data.byteOffset === 0 && data.buffer.byteLength === CHUNK;

export type ToWorker =
  | { type: 'start'; id: number; dest: string; job: UnpackLayerJob }
  | { type: 'data'; id: number; chunk: Uint8Array }
  | { type: 'end'; id: number }
  /** the source failed or the pull was stopped: the job fails with this error */
  | { type: 'abort'; id: number; error: WireError };

/** An error as it crosses the thread boundary: the gRPC code of a BerthError, or none. */
export interface WireError {
  code?: number;
  message: string;
}

export function toWire(err: unknown): WireError {
  return { ...(isBerthError(err) ? { code: err.code } : {}), message: errMessage(err) };
}

export function fromWire(e: WireError): Error {
  return e.code !== undefined ? new BerthError(e.code, e.message) : new Error(e.message);
}

export type FromWorker =
  | { type: 'credit'; id: number; bytes: number }
  /** a whole chunk's buffer the worker is done with, handed back for the pool's next chunk */
  | { type: 'recycle'; buffer: ArrayBuffer }
  | { type: 'log'; level: string; message: string; meta?: LogMeta }
  | { type: 'done'; id: number; result: UnpackLayerResult }
  | { type: 'failed'; id: number; error: WireError };
