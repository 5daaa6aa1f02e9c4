// Bounds on unpacking: a layer's uncompressed tar may not pass image.max_layer_uncompressed_bytes,
// the layers a pull unpacks may not pass image.max_image_uncompressed_bytes together, and a layer may
// not expand to more than image.max_layer_compression_ratio times its compressed size (once past
// RATIO_FLOOR, so small, very compressible layers are not refused). Counted on the decompressed
// stream as it flows, so a gzip bomb is cut off as soon as it passes a bound (RESOURCE_EXHAUSTED).
import { Readable } from 'node:stream';
import type { Config } from '../config/config';
import { BerthError, Status } from '../errors';

/** The ratio check starts once a layer has expanded this far. */
export const RATIO_FLOOR = 64 * 1024 * 1024;

export interface UnpackBudget {
  layerLimit: number;
  imageLimit: number;
  /** 0 = no ratio check */
  ratio: number;
  /**
   * Bytes unpacked so far by this pull (all layers), in shared memory: the layers of a pull unpack
   * in parallel, in worker threads, and each adds to this one count as its bytes flow.
   */
  used: BigInt64Array;
}

export function unpackBudget(cfg: Config['image']): UnpackBudget {
  return {
    layerLimit: cfg.max_layer_uncompressed_bytes,
    imageLimit: cfg.max_image_uncompressed_bytes,
    ratio: cfg.max_layer_compression_ratio,
    used: new BigInt64Array(new SharedArrayBuffer(8)),
  };
}

/** Adds `n` bytes to the pull's count; returns the count after the add (all threads' bytes). */
export function addUnpacked(budget: UnpackBudget, n: number): number {
  return Number(Atomics.add(budget.used, 0, BigInt(n))) + n;
}

/** Bytes the pull has unpacked so far. */
export function unpackedSoFar(budget: UnpackBudget): number {
  return Number(Atomics.load(budget.used, 0));
}

/**
 * Which bound `layerBytes` uncompressed bytes of a layer (compressed: `compressedBytes`) pass, with
 * `usedBefore` bytes unpacked by earlier layers of the pull; undefined when none.
 */
export function unpackViolation(
  layerBytes: number,
  usedBefore: number,
  budget: Pick<UnpackBudget, 'layerLimit' | 'imageLimit' | 'ratio'>,
  compressedBytes: number,
): string | undefined {
  if (layerBytes > budget.layerLimit)
    return `its uncompressed size passes ${budget.layerLimit} bytes, the per-layer limit (image.max_layer_uncompressed_bytes)`;
  if (usedBefore + layerBytes > budget.imageLimit)
    return `the image's unpacked layers pass ${budget.imageLimit} bytes, the per-image limit (image.max_image_uncompressed_bytes)`;
  if (budget.ratio > 0 && layerBytes > RATIO_FLOOR && layerBytes > budget.ratio * compressedBytes)
    return `it expands to more than ${budget.ratio}x its compressed size of ${compressedBytes} bytes (image.max_layer_compression_ratio): refused as a likely decompression bomb`;
  return undefined;
}

/**
 * Passes `src` through, counting its bytes into `budget.used`; fails with RESOURCE_EXHAUSTED naming
 * `info.layer` as soon as a bound is passed (the source is destroyed, so decompression stops).
 */
export function limitUnpacked(
  src: Readable,
  budget: UnpackBudget,
  info: { layer: string; compressedBytes: number },
): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    let n = 0;
    try {
      for await (const chunk of src as AsyncIterable<Buffer>) {
        n += chunk.length;
        const used = addUnpacked(budget, chunk.length);
        const why = unpackViolation(n, used - n, budget, info.compressedBytes);
        if (why) throw new BerthError(Status.RESOURCE_EXHAUSTED, `${info.layer} refused: ${why}`);
        yield chunk;
      }
    } finally {
      src.destroy();
    }
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1024 * 1024 });
}
