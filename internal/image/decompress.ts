// Turns a compressed layer stream into an uncompressed tar stream. The compression is sniffed from
// the first bytes (some registries label layers wrongly); zstd needs a Node whose zlib has it.
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { failedPrecondition } from '../errors';
import type { Compression } from './manifest';

export const ZSTD_UNSUPPORTED =
  'this Node.js has no zstd decompression (zlib gained it in Node 22.15/23.8); push the image with gzip layers';

type ZstdZlib = { createZstdDecompress?: () => NodeJS.ReadWriteStream };

export function zstdSupported(): boolean {
  return typeof (zlib as unknown as ZstdZlib).createZstdDecompress === 'function';
}

export function sniffCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * `src` decompressed, the compression sniffed from its first bytes (read, then put back). Errors of
 * the source or the decompressor surface on the returned stream (it is destroyed with them), so a
 * consumer sees a corrupt gzip as a stream error.
 */
export async function decompressStream(
  src: Readable,
  what: string,
  onConsumed?: (chunk: Buffer) => void,
): Promise<Readable> {
  let head: Buffer;
  try {
    head = await peek(src, 4);
  } catch (err) {
    src.destroy();
    throw err;
  }
  // a source shorter than the peek has ended: its bytes cannot be put back, so they are re-served
  if (src.readableEnded) src = Readable.from(head.length > 0 ? [head] : []);
  const kind = sniffCompression(head);
  if (kind === 'none') return src;
  let dec: NodeJS.ReadWriteStream;
  if (kind === 'gzip') {
    dec = zlib.createGunzip({ chunkSize: 256 * 1024 });
  } else {
    const z = (zlib as unknown as ZstdZlib).createZstdDecompress;
    if (!z) {
      src.destroy();
      throw failedPrecondition(`${what} is zstd-compressed; ${ZSTD_UNSUPPORTED}`);
    }
    dec = z();
  }
  if (onConsumed) reportConsumed(dec as unknown as Transform, onConsumed);
  // Network reads arrive in chunks of 16-64 KiB; each chunk is one trip to the thread pool for
  // zlib, so they are joined into batches first (a file source already reads 1 MiB at a time).
  return pipeline(src, coalesce(INFLATE_BATCH), dec, () => undefined) as unknown as Readable;
}

/** Calls `onConsumed` with each input chunk once the decompressor is done with its bytes. */
function reportConsumed(dec: Transform, onConsumed: (chunk: Buffer) => void): void {
  const transform = dec._transform.bind(dec);
  dec._transform = (chunk: Buffer, enc, cb) =>
    transform(chunk, enc, (err?: Error | null, data?: unknown) => {
      if (chunk.length > 0) onConsumed(chunk); // the final flush comes as an empty chunk
      cb(err, data);
    });
}

/** Compressed bytes handed to the decompressor at a time. */
export const INFLATE_BATCH = 512 * 1024;

/** A pass-through that joins small chunks into chunks of at least `min` bytes (the last may be less). */
export function coalesce(min: number): Transform {
  let parts: Buffer[] = [];
  let len = 0;
  return new Transform({
    highWaterMark: min,
    transform(chunk: Buffer, _enc, cb) {
      if (len === 0 && chunk.length >= min) {
        cb(null, chunk);
        return;
      }
      parts.push(chunk);
      len += chunk.length;
      if (len < min) {
        cb();
        return;
      }
      const out = Buffer.concat(parts, len);
      parts = [];
      len = 0;
      cb(null, out);
    },
    flush(cb) {
      if (len > 0) this.push(Buffer.concat(parts, len));
      parts = [];
      len = 0;
      cb();
    },
  });
}

/** Reads at least `n` bytes of `src` (fewer at its end) and, unless it ended, puts them back. */
async function peek(src: Readable, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const c = src.read() as Buffer | null;
    if (c !== null) {
      parts.push(c);
      len += c.length;
      continue;
    }
    if (src.readableEnded || src.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        src.off('readable', done);
        src.off('end', done);
        src.off('close', done);
        src.off('error', fail);
        resolve();
      };
      const fail = (err: Error): void => {
        done();
        reject(err);
      };
      src.on('readable', done);
      src.on('end', done);
      src.on('close', done);
      src.on('error', fail);
    });
  }
  const head = Buffer.concat(parts);
  if (src.errored) throw src.errored;
  if (head.length > 0 && !src.readableEnded) src.unshift(head);
  return head;
}
