import { Readable } from 'node:stream';
import { Status, isBerthError } from '../errors';
import { RATIO_FLOOR, limitUnpacked, unpackViolation, unpackedSoFar } from './unpack-limits';

const budget = { layerLimit: 1000, imageLimit: 1500, ratio: 0 };

describe('unpackViolation', () => {
  it('per layer, per image, and the ratio past its floor', () => {
    expect(unpackViolation(1000, 0, budget, 10)).toBeUndefined();
    expect(unpackViolation(1001, 0, budget, 10)).toMatch(
      /per-layer limit \(image.max_layer_uncompressed_bytes\)/,
    );
    expect(unpackViolation(601, 900, budget, 10)).toMatch(
      /per-image limit \(image.max_image_uncompressed_bytes\)/,
    );
    const r = { layerLimit: 1e12, imageLimit: 1e12, ratio: 1000 };
    expect(unpackViolation(RATIO_FLOOR, 0, r, 1000)).toBeUndefined(); // under the floor
    expect(unpackViolation(RATIO_FLOOR + 1, 0, r, 1000)).toMatch(
      /more than 1000x its compressed size of 1000 bytes/,
    );
    expect(unpackViolation(RATIO_FLOOR + 1, 0, r, 100_000)).toBeUndefined();
    expect(unpackViolation(RATIO_FLOOR + 1, 0, { ...r, ratio: 0 }, 1)).toBeUndefined();
  });
});

describe('limitUnpacked', () => {
  it('counts into the budget and cuts the stream with RESOURCE_EXHAUSTED naming the layer', async () => {
    const b = { ...budget, used: new BigInt64Array(new SharedArrayBuffer(8)) };
    const ok = limitUnpacked(Readable.from([Buffer.alloc(400), Buffer.alloc(400)]), b, {
      layer: 'layer A',
      compressedBytes: 1,
    });
    let n = 0;
    for await (const c of ok) n += (c as Buffer).length;
    expect(n).toBe(800);
    expect(unpackedSoFar(b)).toBe(800);
    let destroyed = false;
    const src = Readable.from([Buffer.alloc(400), Buffer.alloc(400), Buffer.alloc(400)]);
    src.on('close', () => (destroyed = true));
    const s = limitUnpacked(src, b, { layer: 'layer B', compressedBytes: 1 });
    let err: unknown;
    try {
      for await (const _ of s) void _;
    } catch (e) {
      err = e;
    }
    expect(isBerthError(err, Status.RESOURCE_EXHAUSTED)).toBe(true);
    expect((err as Error).message).toMatch(/^layer B refused: the image's unpacked layers pass 1500 bytes/);
    await new Promise((r) => setImmediate(r));
    expect(destroyed).toBe(true);
  });
});
