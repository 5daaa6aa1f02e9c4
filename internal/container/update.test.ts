import { Status } from '../errors';
import { RuncError } from '../runtime';
import { mergeResources, recordResources, requestedResources, updateRefusal } from './update';
import type { LinuxContainerResources__Output } from '../../api/generated';
import { resources } from '../oci/test-fixtures';

const base: LinuxContainerResources__Output = resources();

test('requested resources: memory with swap = limit where swap is accounted', () => {
  const r = { ...base, memory_limit_in_bytes: String(128 << 20), cpu_quota: '50000', cpu_period: '100000' };
  expect(requestedResources(r, { rro: false, swap: true })).toEqual({
    memory: { limit: 128 << 20, swap: 128 << 20 },
    cpu: { quota: 50000, period: 100000 },
  });
  expect(requestedResources(r, { rro: false, swap: false }).memory).toEqual({ limit: 128 << 20 });
  expect(() => requestedResources({ ...base, memory_limit_in_bytes: '-1' }, { rro: false })).toThrow(
    /must not be negative/,
  );
});

test('merge keeps what the update does not set, and the devices', () => {
  const old = {
    devices: [{ allow: false, access: 'rwm' }],
    memory: { limit: 10, swap: 10 },
    cpu: { shares: 2, quota: 1000 },
    hugepageLimits: [{ pageSize: '2MB', limit: 1 }],
  };
  expect(
    mergeResources(old, { cpu: { quota: 2000 }, hugepageLimits: [{ pageSize: '1GB', limit: 2 }] }),
  ).toEqual({
    devices: [{ allow: false, access: 'rwm' }],
    memory: { limit: 10, swap: 10 },
    cpu: { shares: 2, quota: 2000 },
    hugepageLimits: [
      { pageSize: '2MB', limit: 1 },
      { pageSize: '1GB', limit: 2 },
    ],
  });
});

test('the record keeps its oom_score_adj (it cannot change live)', () => {
  expect(
    recordResources({ ...base, oom_score_adj: '-5' }, { ...base, oom_score_adj: '100' }).oom_score_adj,
  ).toBe('-5');
});

test('refusals map to clear codes', () => {
  const ebusy = new RuncError(
    'update',
    'other',
    'unable to set memory limit to 8388608 (current usage: 47611904, peak usage: 48001024)',
  );
  const e1 = updateRefusal(ebusy, 'abc', { ...base, memory_limit_in_bytes: '8388608' });
  expect(e1.code).toBe(Status.FAILED_PRECONDITION);
  expect(e1.message).toMatch(/memory_limit_in_bytes 8388608 is below what the container uses now/);
  const crunBusy = new RuncError('update', 'other', 'write `memory.limit_in_bytes`: Device or resource busy');
  expect(updateRefusal(crunBusy, 'abc', base).code).toBe(Status.FAILED_PRECONDITION);
  expect(updateRefusal(new RuncError('update', 'other', 'write x: invalid argument'), 'a', base).code).toBe(
    Status.INVALID_ARGUMENT,
  );
  expect(updateRefusal(new RuncError('update', 'not-running', 'container not running'), 'a', base).code).toBe(
    Status.FAILED_PRECONDITION,
  );
});
