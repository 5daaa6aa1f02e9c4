// Errors that carry a gRPC status code. Every part of Berth throws these (or plain Errors, which
// the server maps to INTERNAL); CRI handlers never build status objects by hand.
// The codes come from grpc-js's own constants module, not its index: the index loads all of
// grpc-js (65 modules, ~90 ms of CPU), and code that only throws BerthErrors (the unpack worker
// thread) must not pay that. The enum is the one grpc-js exports as `status` (errors.test.ts).
import { Status } from '@grpc/grpc-js/build/src/constants';

export { Status };

export class BerthError extends Error {
  constructor(
    readonly code: Status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BerthError';
  }
}

export const invalidArgument = (msg: string): BerthError => new BerthError(Status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string): BerthError => new BerthError(Status.NOT_FOUND, msg);
export const alreadyExists = (msg: string): BerthError => new BerthError(Status.ALREADY_EXISTS, msg);
export const failedPrecondition = (msg: string): BerthError =>
  new BerthError(Status.FAILED_PRECONDITION, msg);
export const deadlineExceeded = (msg: string): BerthError => new BerthError(Status.DEADLINE_EXCEEDED, msg);
export const unimplemented = (msg: string): BerthError => new BerthError(Status.UNIMPLEMENTED, msg);
export const unavailable = (msg: string): BerthError => new BerthError(Status.UNAVAILABLE, msg);
export const permissionDenied = (msg: string): BerthError => new BerthError(Status.PERMISSION_DENIED, msg);
export const unauthenticated = (msg: string): BerthError => new BerthError(Status.UNAUTHENTICATED, msg);
export const internalError = (msg: string, cause?: unknown): BerthError =>
  new BerthError(Status.INTERNAL, msg, { cause });

export function isBerthError(err: unknown, code?: Status): err is BerthError {
  return err instanceof BerthError && (code === undefined || err.code === code);
}

/** Message of any thrown value, for logs and wrapped errors. */
export function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Shortens user-supplied text (ids, names, references) before it goes into an error or a log line. */
export function short(value: unknown, max = 80): string {
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  const printable = s.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}...(${s.length} chars)` : printable;
}
