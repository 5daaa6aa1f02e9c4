import { BackgroundQueue } from './background-queue';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('BackgroundQueue', () => {
  it('runs at most `concurrency` jobs at once, in order', async () => {
    const q = new BackgroundQueue(2);
    const started: string[] = [];
    const gates = ['a', 'b', 'c'].map(() => gate());
    ['a', 'b', 'c'].forEach(
      (k, i) =>
        void q.add(k, 'g', async () => {
          started.push(k);
          await gates[i].promise;
        }),
    );
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect(q.size).toBe(3);
    // queued and running jobs are both known until they end
    expect(['a', 'c', 'z'].map((k) => q.has(k))).toEqual([true, true, false]);
    gates[0].open();
    await q.wait('a');
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    gates[1].open();
    gates[2].open();
    await q.drain();
    expect(q.size).toBe(0);
    expect(q.has('a')).toBe(false);
  });

  it('waits per group, survives failures, and keeps one job per key', async () => {
    const q = new BackgroundQueue(4);
    const g = gate();
    let ran = 0;
    const p1 = q.add('x', 'pod1', async () => {
      ran++;
      await g.promise;
    });
    const p2 = q.add('x', 'pod1', async () => {
      ran++;
    });
    expect(p2).toBe(p1);
    void q.add('y', 'pod2', () => Promise.reject(new Error('boom')));
    await q.settled('pod2');
    let pod1Done = false;
    void q.settled('pod1').then(() => (pod1Done = true));
    await tick();
    expect(pod1Done).toBe(false);
    g.open();
    await q.settled('pod1');
    expect(ran).toBe(1);
    expect(q.size).toBe(0);
  });
});
