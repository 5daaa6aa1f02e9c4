// The snapshotter's error: a BerthError (so the server maps it to a gRPC code) that says it came
// from layer or snapshot handling. A hostile or malformed layer is INVALID_ARGUMENT: the image is
// unusable, retrying will not help.
import { BerthError, Status } from '../errors';

export class SnapshotError extends BerthError {
  constructor(message: string, code: Status = Status.INVALID_ARGUMENT, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SnapshotError';
  }
}
