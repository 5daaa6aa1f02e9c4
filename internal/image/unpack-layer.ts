// Unpacks one compressed layer stream into an empty directory: decompression (sniffed), the unpack
// bounds of the pull, the diff_id check and the secure tar apply, in one place. The unpack pool runs
// it in a worker thread (internal/image/unpack-worker.ts); it also runs as is in the calling thread.
// Errors come out as BerthErrors naming the layer: a bad diff_id or a corrupt stream DATA_LOSS, a
// bound RESOURCE_EXHAUSTED, a hostile tar INVALID_ARGUMENT (from the apply).
import type { Readable } from 'node:stream';
import { BerthError, errMessage, isBerthError, Status } from '../errors';
import type { Logger } from '../log';
import { applyLayerTar } from '../snapshot/apply';
import { verifiedStream } from './content';
import { decompressStream } from './decompress';
import { type UnpackBudget, limitUnpacked } from './unpack-limits';

export interface UnpackLayerJob {
  /** the layer's uncompressed digest */
  diffId: string;
  /** how errors name the layer, e.g. `layer sha256:…` */
  what: string;
  /** how a bound's error names the layer and its image */
  label: string;
  /** size of the compressed stream (for the compression-ratio bound) */
  compressedBytes: number;
  budget: UnpackBudget;
}

export interface UnpackLayerResult {
  /** bytes on disk and inodes of the unpacked tree */
  size: number;
  inodes: number;
  /** uncompressed tar bytes */
  bytes: number;
}

/**
 * Unpacks `compressed` into the empty directory `dest`; see the file comment for the errors.
 * `onConsumed` hears of each compressed chunk once decompression is done with it (never for an
 * uncompressed layer), so its memory can be reused.
 */
export async function unpackLayer(
  compressed: Readable,
  dest: string,
  job: UnpackLayerJob,
  log?: Logger,
  onConsumed?: (chunk: Buffer) => void,
): Promise<UnpackLayerResult> {
  const tar = limitUnpacked(await decompressStream(compressed, job.what, onConsumed), job.budget, {
    layer: job.label,
    compressedBytes: job.compressedBytes,
  });
  const v = verifiedStream(tar, job.diffId, `${job.what} (diff_id)`);
  let streamErr: unknown;
  v.stream.on('error', (e) => (streamErr ??= e));
  let applied: { size: number; inodes: number };
  try {
    applied = await applyLayerTar(dest, v.stream, { log, maxFileBytes: job.budget.layerLimit });
  } catch (err) {
    v.stream.destroy();
    // A bad diff_id or a corrupt gzip is the real cause when the apply only saw the stream die.
    if (streamErr) throw mismatchOrCorrupt(streamErr, job.what);
    // a bound the apply enforces (a sparse file's apparent size): name the layer
    if (isBerthError(err, Status.RESOURCE_EXHAUSTED) && !err.message.includes(job.what))
      throw new BerthError(err.code, `${job.what}: ${err.message}`, { cause: err });
    throw err;
  }
  if (!v.verified() && !v.stream.destroyed) {
    // The apply stopped reading before the end: hash the rest so the check is whole.
    try {
      for await (const chunk of v.stream) void chunk;
    } catch (err) {
      streamErr ??= err;
    }
  }
  if (streamErr || !v.verified())
    throw mismatchOrCorrupt(streamErr ?? new Error('layer stream ended early'), job.what);
  return { ...applied, bytes: v.bytes() };
}

/** A stream failure as the pull reports it: BerthErrors as they are, anything else DATA_LOSS. */
function mismatchOrCorrupt(err: unknown, what: string): BerthError {
  if (isBerthError(err)) return err;
  return new BerthError(Status.DATA_LOSS, `${what} cannot be decompressed: ${errMessage(err)}`, {
    cause: err,
  });
}
