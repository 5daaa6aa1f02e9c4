import type { PodSandboxConfig__Output } from '../../api/generated';
import { needsInfra, podReady, type SandboxRecord } from './types';

const pod = (pid?: 'POD' | 'CONTAINER' | 'NODE'): PodSandboxConfig__Output =>
  ({
    linux: pid ? { security_context: { namespace_options: { network: 'POD', ipc: 'POD', pid } } } : null,
  }) as unknown as PodSandboxConfig__Output;

describe('needsInfra', () => {
  it('keeps an infra container for a shared PID namespace, a user namespace, or when dropping is off', () => {
    expect(needsInfra(pod('CONTAINER'), false, true)).toBe(false);
    expect(needsInfra(pod('NODE'), false, true)).toBe(false);
    expect(needsInfra(pod('POD'), false, true)).toBe(true);
    // no namespace_options at all: POD, the enum's zero value
    expect(needsInfra(pod(), false, true)).toBe(true);
    expect(needsInfra(pod('CONTAINER'), true, true)).toBe(true);
    expect(needsInfra(pod('CONTAINER'), false, false)).toBe(true);
  });
});

describe('podReady', () => {
  const rec = (extra: Partial<SandboxRecord>): SandboxRecord =>
    ({ state: 'ready', pid: 0, ...extra }) as SandboxRecord;
  it('needs a running infra container, or none at all', () => {
    expect(podReady(rec({ pid: 42 }))).toBe(true);
    expect(podReady(rec({ pid: 0 }))).toBe(false);
    expect(podReady(rec({ dropInfra: true }))).toBe(true);
    expect(podReady(rec({ dropInfra: true, state: 'notready' }))).toBe(false);
    expect(podReady(rec({ pid: 42, state: 'creating' }))).toBe(false);
  });
});
