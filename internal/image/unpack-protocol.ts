// The messages between the unpack pool (main thread) and an unpack worker. One job at a time per
// worker. The compressed bytes go over in chunks whose ArrayBuffers are transferred, not copied;
// the worker gives credit back as the unpack consumes them, so the pool keeps a bounded amount in
// flight and the download feels backpressure as it did in one thread.
import { BerthError, errMessage, isBerthError } from '../errors';
import type { LogMeta } from '../log';
import type { UnpackLayerJob, UnpackLayerResult } from './unpack-layer';

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
  | { type: 'log'; level: string; message: string; meta?: LogMeta }
  | { type: 'done'; id: number; result: UnpackLayerResult }
  | { type: 'failed'; id: number; error: WireError };
