// endOutputs: the exit status of a session is sent only after its output has gone out.
import { Writable } from 'node:stream';
import { endOutputs } from './session-io';

/** A Writable that takes each chunk `ms` later (a slow connection), recording the order. */
function slow(name: string, ms: number, order: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        order.push(`${name}:${chunk.toString()}`);
        cb();
      }, ms);
    },
  });
}

test('resolves once every queued chunk of every stream has been taken', async () => {
  const order: string[] = [];
  const out = slow('out', 20, order);
  const err = slow('err', 5, order);
  for (const c of ['a', 'b', 'c']) out.write(c);
  err.write('x');
  await endOutputs([out, undefined, err]);
  order.push('status');
  expect(order).toEqual(['err:x', 'out:a', 'out:b', 'out:c', 'status']);
});

test('a stream that never takes its output holds the status back at most `ms`', async () => {
  const stuck = new Writable({ write: () => undefined });
  stuck.write('never taken');
  const t0 = Date.now();
  await endOutputs([stuck], 100);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(90);
  expect(Date.now() - t0).toBeLessThan(2000);
});

test('a stream already gone does not hold anything back', async () => {
  const gone = new Writable({ write: (_c, _e, cb) => cb() });
  gone.destroy();
  await endOutputs([gone], 10_000);
});
