// What a pull tells its caller when every endpoint (mirrors, then the upstream) failed: each endpoint
// with its own answer, and one status code that says what is true about the image.
//
// Code: an endpoint that was reached and answered definitely (not found, auth refused, bad content)
// decides; the upstream's definite answer wins over the mirrors' (mirrors are caches), else the first
// mirror's in the configured order. UNAVAILABLE (or the upstream's transient code, e.g. a 429's
// RESOURCE_EXHAUSTED) only when no endpoint gave a definite answer.
import { BerthError, Status, errMessage, isBerthError } from '../errors';

/** How an endpoint failed: not reached at all, reached but broken for now (5xx, 429), or a real answer. */
export type AnswerKind = 'unreachable' | 'transient' | 'definite';

/** A registry failure that knows its short answer for a combined message (e.g. `manifest unknown`). */
export class RegistryError extends BerthError {
  constructor(
    code: Status,
    message: string,
    readonly answer: string,
    readonly kind: AnswerKind,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'RegistryError';
  }
}

export interface EndpointFailure {
  /** `mirror http://127.0.0.1:5000` or the registry's domain, e.g. `docker.io` */
  label: string;
  mirror: boolean;
  error: unknown;
}

const TRANSIENT_CODES = new Set<Status>([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.UNKNOWN,
  Status.INTERNAL,
  Status.ABORTED,
]);

export function answerKind(err: unknown): AnswerKind {
  if (err instanceof RegistryError) return err.kind;
  if (isBerthError(err) && !TRANSIENT_CODES.has(err.code)) return 'definite';
  return 'transient';
}

export function answerOf(err: unknown): string {
  return err instanceof RegistryError ? err.answer : errMessage(err);
}

function codeOf(err: unknown): Status {
  return isBerthError(err) ? err.code : Status.UNAVAILABLE;
}

/** One error for a pull whose endpoints all failed (a single endpoint's error is returned as is). */
export function combineEndpointFailures(ref: string, failures: EndpointFailure[]): BerthError {
  if (failures.length === 0) return new BerthError(Status.UNAVAILABLE, `${ref}: no registry endpoint`);
  if (failures.length === 1) {
    const only = failures[0]!.error;
    return isBerthError(only) ? only : new BerthError(Status.UNAVAILABLE, errMessage(only));
  }
  const upstream = failures.filter((f) => !f.mirror).at(-1);
  const definite = failures.filter((f) => answerKind(f.error) === 'definite');
  let code: Status;
  const up = definite.find((f) => !f.mirror);
  if (up) code = codeOf(up.error);
  else if (definite.length > 0) code = codeOf(definite[0]!.error);
  else if (failures.every((f) => answerKind(f.error) === 'unreachable')) code = Status.UNAVAILABLE;
  else code = codeOf((upstream ?? failures.at(-1)!).error);
  const parts = failures.map((f) => `${f.label}: ${answerOf(f.error)}`);
  return new BerthError(code, `${ref}: ${parts.join('; ')}`, { cause: failures.at(-1)!.error });
}
