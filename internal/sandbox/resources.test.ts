import type { LinuxContainerResources__Output } from '../../api/generated';
import { nextPodResources } from './resources';

const res = (o: Partial<LinuxContainerResources__Output>) => o as LinuxContainerResources__Output;

test('records both sides; a side left unset keeps its last value', () => {
  const a = nextPodResources(
    undefined,
    res({ cpu_shares: '10' }),
    res({ memory_limit_in_bytes: '1000' }),
    '1',
  );
  expect(a).toEqual({
    updatedAt: '1',
    overhead: { cpu_shares: '10' },
    resources: { memory_limit_in_bytes: '1000' },
  });
  const b = nextPodResources(a, null, res({ memory_limit_in_bytes: '2000' }), '2');
  expect(b).toEqual({
    updatedAt: '2',
    overhead: { cpu_shares: '10' },
    resources: { memory_limit_in_bytes: '2000' },
  });
});

test('bad values are INVALID_ARGUMENT naming the side and field', () => {
  expect(() => nextPodResources(undefined, null, res({ memory_limit_in_bytes: '-5' }), '1')).toThrow(
    /^resources\.memory_limit_in_bytes must not be negative/,
  );
  expect(() => nextPodResources(undefined, res({ cpu_quota: 'x' }), null, '1')).toThrow(
    /^overhead\.cpu_quota/,
  );
  expect(() => nextPodResources(undefined, null, res({ oom_score_adj: '5000' }), '1')).toThrow(
    /oom_score_adj/,
  );
  try {
    nextPodResources(undefined, null, res({ cpu_shares: '-1' }), '1');
  } catch (e) {
    expect((e as { code: number }).code).toBe(3);
  }
});
