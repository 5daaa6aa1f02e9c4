// Opens a stored layer blob as an uncompressed tar stream. The compression is sniffed from the
// blob's first bytes (some registries label layers wrongly); zstd needs a Node whose zlib has it.
import { createReadStream, promises as fsp } from 'node:fs';
import type { Readable } from 'node:stream';
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
 * Opens `file` decompressed. Errors of the source or the decompressor surface on the returned
 * stream (it is destroyed with them), so a consumer sees a corrupt gzip as a stream error.
 */
export async function openDecompressed(file: string, what: string): Promise<Readable> {
  const head = Buffer.alloc(4);
  const fh = await fsp.open(file, 'r');
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const kind = sniffCompression(head);
  const src = createReadStream(file, { highWaterMark: 1024 * 1024 });
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
  return pipeline(src, dec, () => undefined) as unknown as Readable;
}
