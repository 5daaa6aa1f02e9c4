import { mapSliced, Slicer } from './slicer';

/** Busy-waits `ms` on the event loop, as a synchronous read or lstat would. */
function spin(ms: number): void {
  const end = process.hrtime.bigint() + BigInt(ms * 1e6);
  while (process.hrtime.bigint() < end);
}

test('a Slicer gives the loop back once its budget is used, not before', async () => {
  const s = new Slicer(5);
  await s.pause();
  expect(s.yields).toBe(0);
  spin(6);
  await s.pause();
  expect(s.yields).toBe(1);
  await s.pause();
  expect(s.yields).toBe(1);
});

test('mapSliced lets a timer run between items where Promise.all of sync steps would not', async () => {
  const items = Array.from({ length: 20 }, (_, i) => i);
  const step = async (i: number): Promise<number> => {
    spin(1);
    return i * 2;
  };
  // the old shape: every item's steps in one run of microtasks, so the timer waits for all of them
  let fired = false;
  let seenDuring = 0;
  setTimeout(() => (fired = true), 0);
  await Promise.all(items.map(async (i) => ((seenDuring += fired ? 1 : 0), step(i))));
  expect(seenDuring).toBe(0);

  let timerRanAt = -1;
  let done = 0;
  await new Promise((r) => setTimeout(r, 1)); // start with a fresh turn of the loop
  setTimeout(() => (timerRanAt = done), 0);
  const out = await mapSliced(
    items,
    async (i) => {
      const r = await step(i);
      done++;
      return r;
    },
    new Slicer(2),
  );
  expect(out).toEqual(items.map((i) => i * 2));
  expect(timerRanAt).toBeGreaterThan(0);
  expect(timerRanAt).toBeLessThan(items.length);
});

test('an aborted job stops at its next pause', async () => {
  const ac = new AbortController();
  const s = new Slicer(0, ac.signal);
  ac.abort(new Error('stopped'));
  spin(1);
  await expect(s.pause()).rejects.toThrow('stopped');
});
