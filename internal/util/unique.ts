// Unique suffixes for scratch and temp file names (exec pid files, atomic-write temp files). A
// random prefix drawn once per process plus a counter: unique within the process, and across
// restarts by the prefix. Drawing fresh random bytes per name cost ~50 µs of the event loop each
// (crypto.randomFillSync), once per exec probe and per record write.
import { randomBytes } from 'node:crypto';

const prefix = randomBytes(4).toString('hex');
let seq = 0;

/** 12+ hex-ish characters, never the same twice in one process. */
export function uniqueSuffix(): string {
  seq = (seq + 1) % Number.MAX_SAFE_INTEGER;
  return `${prefix}${seq.toString(36).padStart(4, '0')}`;
}
