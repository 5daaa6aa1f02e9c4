import { ChunkGatherer } from './chunk-gatherer';

test('ChunkGatherer fills taken buffers in order, emits each when full and the rest on flush', () => {
  const taken: Buffer[] = [];
  const out: Buffer[] = [];
  const g = new ChunkGatherer(
    () => {
      const b = Buffer.alloc(8);
      taken.push(b);
      return b;
    },
    (c) => out.push(c),
  );
  const data = Buffer.from('abcdefghijklmnopqrstu'); // 21 bytes
  g.add(data, 0, 5);
  expect(out).toEqual([]);
  expect(g.pending).toBe(5);
  g.add(data, 5, 21);
  expect(out.map((c) => c.toString())).toEqual(['abcdefgh', 'ijklmnop']);
  expect(out.every((c, i) => c === taken[i])).toBe(true); // full chunks go out as the buffers taken
  g.flush();
  expect(out.map((c) => c.toString())).toEqual(['abcdefgh', 'ijklmnop', 'qrstu']);
  expect(out[2]?.buffer).toBe(taken[2]?.buffer); // a partial one is a view of its buffer
  expect(g.pending).toBe(0);
  g.flush(); // nothing pending: nothing emitted
  expect(out.length).toBe(3);
  expect(taken.length).toBe(3);
});
