import { Status } from '../errors';
import { runPodCheckpoint, type PodCheckpointSteps } from './pod-checkpoint-run';

/** Steps that log each call; `fail` makes the named call reject. */
function fake(fail: Partial<Record<string, string>> = {}, onCall?: (call: string) => void) {
  const calls: string[] = [];
  const step =
    (kind: string) =>
    async (c?: string): Promise<void> => {
      const call = c === undefined ? kind : `${kind} ${c}`;
      calls.push(call);
      onCall?.(call);
      if (Object.values(fail).includes(call)) throw new Error(`${call} broke`);
    };
  const steps: PodCheckpointSteps<string> = {
    name: (c) => c,
    pause: step('pause'),
    resume: step('resume'),
    capture: (c) => step('capture')(c),
    finish: () => step('finish')(),
    clean: () => step('clean')(),
  };
  return { calls, steps };
}

describe('runPodCheckpoint', () => {
  it('pauses all, captures each in order, resumes all, then writes the manifest', async () => {
    const f = fake();
    await runPodCheckpoint(['a', 'b', 'c'], f.steps);
    expect(f.calls).toEqual([
      'pause a',
      'pause b',
      'pause c',
      'capture a',
      'capture b',
      'capture c',
      'resume a',
      'resume b',
      'resume c',
      'finish',
    ]);
  });
  it('a failed capture still resumes every paused container, then cleans up and reports it', async () => {
    const f = fake({ x: 'capture b' });
    await expect(runPodCheckpoint(['a', 'b', 'c'], f.steps)).rejects.toThrow('capture b broke');
    expect(f.calls).toEqual([
      'pause a',
      'pause b',
      'pause c',
      'capture a',
      'capture b',
      'resume a',
      'resume b',
      'resume c',
      'clean',
    ]);
  });
  it('a failed pause resumes only those already paused', async () => {
    const f = fake({ x: 'pause b' });
    await expect(runPodCheckpoint(['a', 'b', 'c'], f.steps)).rejects.toThrow('pause b broke');
    expect(f.calls).toEqual(['pause a', 'pause b', 'resume a', 'clean']);
  });
  it('a failed resume is INTERNAL naming the container, after trying all; no manifest', async () => {
    const f = fake({ x: 'resume a' });
    await expect(runPodCheckpoint(['a', 'b'], f.steps)).rejects.toMatchObject({
      code: Status.INTERNAL,
      message: 'resuming paused containers failed: a: resume a broke',
    });
    expect(f.calls.slice(-3)).toEqual(['resume a', 'resume b', 'clean']);
  });
  it('a failed resume after a failed capture is added to the capture error', async () => {
    const f = fake({ x: 'capture a', y: 'resume b' });
    await expect(runPodCheckpoint(['a', 'b'], f.steps)).rejects.toThrow(
      'capture a broke; then resuming paused containers failed: b: resume b broke',
    );
  });
  it('a failed manifest write cleans up', async () => {
    const f = fake({ x: 'finish' });
    await expect(runPodCheckpoint(['a'], f.steps)).rejects.toThrow('finish broke');
    expect(f.calls).toEqual(['pause a', 'capture a', 'resume a', 'finish', 'clean']);
  });
  it('a passed deadline stops before the next step, resumes and cleans up (DEADLINE_EXCEEDED)', async () => {
    const ac = new AbortController();
    const f = fake({}, (call) => {
      if (call === 'capture a') ac.abort();
    });
    await expect(runPodCheckpoint(['a', 'b'], f.steps, ac.signal)).rejects.toMatchObject({
      code: Status.DEADLINE_EXCEEDED,
    });
    expect(f.calls).toEqual(['pause a', 'pause b', 'capture a', 'resume a', 'resume b', 'clean']);
  });
});
