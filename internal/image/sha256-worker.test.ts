import { createHash, randomBytes } from 'node:crypto';
import { BATCH, Sha256 } from './sha256-worker';

const ref = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('Sha256 (hashing worker)', () => {
  it('hashes a small input on the spot and a large one through the worker, as node:crypto does', async () => {
    const small = randomBytes(1000);
    const h1 = new Sha256();
    expect(h1.update(small)).toBeUndefined();
    expect(await h1.digest()).toBe(ref(small));

    // odd chunk sizes across batch boundaries, with waits when the worker is behind
    const big = randomBytes(BATCH * 11 + 12345);
    const h2 = new Sha256();
    for (let off = 0; off < big.length; ) {
      const n = Math.min(big.length - off, 70_001 + (off % 3) * 100_000);
      const wait = h2.update(big.subarray(off, off + n));
      if (wait) await wait;
      off += n;
    }
    expect(await h2.digest()).toBe(ref(big));
  });

  it('keeps concurrent hashes apart, and forgets dropped ones', async () => {
    const a = randomBytes(BATCH * 3 + 7);
    const b = randomBytes(BATCH * 2 + 9);
    const ha = new Sha256();
    const hb = new Sha256();
    const dropped = new Sha256();
    for (let i = 0; i < 3; i++) {
      await ha.update(a.subarray(i * BATCH, (i + 1) * BATCH));
      if (i < 2) await hb.update(b.subarray(i * BATCH, (i + 1) * BATCH));
      await dropped.update(b.subarray(0, BATCH));
    }
    dropped.drop();
    await ha.update(a.subarray(3 * BATCH));
    await hb.update(b.subarray(2 * BATCH));
    const [da, db] = await Promise.all([ha.digest(), hb.digest()]);
    expect(da).toBe(ref(a));
    expect(db).toBe(ref(b));
    expect(await new Sha256().digest()).toBe(ref(Buffer.alloc(0)));
  });

  it('more batches in flight than shared slots: the rest go in buffers of their own, digests stay right', async () => {
    const inputs = Array.from({ length: 12 }, (_, i) => randomBytes(BATCH * 4 + i));
    const hashes = inputs.map(() => new Sha256());
    // every batch is handed over before any ack can come back (no await in between)
    for (let b = 0; b <= 4; b++)
      inputs.forEach((data, i) => void hashes[i]!.update(data.subarray(b * BATCH, (b + 1) * BATCH)));
    const digests = await Promise.all(hashes.map((h) => h.digest()));
    expect(digests).toEqual(inputs.map(ref));
  });
});
