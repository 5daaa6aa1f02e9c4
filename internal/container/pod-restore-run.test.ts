import { Status } from '../errors';
import type { RestorePlan } from './pod-checkpoint';
import { runPodRestore, type PodRestoreSteps } from './pod-restore-run';

const plan = (...names: string[]): RestorePlan => ({
  sandbox: { config: { metadata: { name: 'p' } } as RestorePlan['sandbox']['config'], runtimeHandler: '' },
  containers: names.map((name, n) => ({
    name,
    config: { metadata: { name } } as RestorePlan['containers'][number]['config'],
    archive: `containers/${n}/checkpoint.tar`,
    checkpointedId: `old-${name}`,
  })),
});

/** Steps that log each call; a call listed in `fail` rejects. Pod and container ids are made up. */
function fake(fail: string[] = [], onCall?: (call: string) => void) {
  const calls: string[] = [];
  const log = (call: string): void => {
    calls.push(call);
    onCall?.(call);
    if (fail.includes(call)) throw new Error(`${call} broke`);
  };
  const steps: PodRestoreSteps = {
    runSandbox: async () => (log('run pod'), 'pod1'),
    createContainer: async (podId, step, n) => (
      log(`create ${step.name} #${n} in ${podId}`),
      `id-${step.name}`
    ),
    removeContainer: async (id) => log(`remove ${id}`),
    removeSandbox: async (podId) => log(`remove pod ${podId}`),
  };
  return { calls, steps };
}

describe('runPodRestore', () => {
  it('runs the sandbox, then creates each container in plan order; answers names and ids', async () => {
    const f = fake();
    await expect(runPodRestore(plan('a', 'b'), f.steps)).resolves.toEqual({
      podId: 'pod1',
      containers: [
        { name: 'a', id: 'id-a' },
        { name: 'b', id: 'id-b' },
      ],
    });
    expect(f.calls).toEqual(['run pod', 'create a #0 in pod1', 'create b #1 in pod1']);
  });
  it('a failed container removes the ones made (newest first), then the sandbox, and returns its error', async () => {
    const f = fake(['create c #2 in pod1']);
    await expect(runPodRestore(plan('a', 'b', 'c'), f.steps)).rejects.toThrow('create c #2 in pod1 broke');
    expect(f.calls).toEqual([
      'run pod',
      'create a #0 in pod1',
      'create b #1 in pod1',
      'create c #2 in pod1',
      'remove id-b',
      'remove id-a',
      'remove pod pod1',
    ]);
  });
  it('a failed sandbox creates nothing and removes nothing (RunPodSandbox rolls itself back)', async () => {
    const f = fake(['run pod']);
    await expect(runPodRestore(plan('a'), f.steps)).rejects.toThrow('run pod broke');
    expect(f.calls).toEqual(['run pod']);
  });
  it('a failed removal is added to the error, after trying every removal', async () => {
    const f = fake(['create b #1 in pod1', 'remove id-a']);
    await expect(runPodRestore(plan('a', 'b'), f.steps)).rejects.toThrow(
      'create b #1 in pod1 broke; then the rollback failed (container a: remove id-a broke)',
    );
    expect(f.calls.slice(-2)).toEqual(['remove id-a', 'remove pod pod1']);
  });
  it('a passed deadline stops before the next step and rolls back (DEADLINE_EXCEEDED)', async () => {
    const ac = new AbortController();
    const f = fake([], (call) => {
      if (call.startsWith('create a')) ac.abort();
    });
    await expect(runPodRestore(plan('a', 'b'), f.steps, ac.signal)).rejects.toMatchObject({
      code: Status.DEADLINE_EXCEEDED,
    });
    expect(f.calls).toEqual(['run pod', 'create a #0 in pod1', 'remove id-a', 'remove pod pod1']);
  });
  it('a deadline passed on the last container still rolls everything back', async () => {
    const ac = new AbortController();
    const f = fake([], (call) => {
      if (call.startsWith('create b')) ac.abort();
    });
    await expect(runPodRestore(plan('a', 'b'), f.steps, ac.signal)).rejects.toMatchObject({
      code: Status.DEADLINE_EXCEEDED,
    });
    expect(f.calls.slice(-3)).toEqual(['remove id-b', 'remove id-a', 'remove pod pod1']);
  });
});
