// The SHA-256 a pull computes twice over every byte (the compressed blob against its digest, the
// tar against its diff_id). Hashed where the bytes pass, on the main thread: OpenSSL's SHA-256
// takes well under a millisecond per chunk here. A worker thread was tried and measured worse on
// every count (`npm run bench -- pull`, 2026-12-07, same session: 1818 against 1637 ms, 189
// against 142 MB peak RSS, 2.52 against 2.15 s of CPU): handing each chunk over cost the main
// thread about what hashing it does, plus copies and garbage.
import { createHash, type Hash } from 'node:crypto';

/** One SHA-256, fed in order with update() and finished with digest() (or abandoned with drop()). */
export class Sha256 {
  private readonly h: Hash = createHash('sha256');

  update(chunk: Uint8Array): void {
    this.h.update(chunk);
  }

  /** `sha256:<hex>` of everything added. */
  digest(): string {
    return `sha256:${this.h.digest('hex')}`;
  }
}
