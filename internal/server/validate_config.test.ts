import { status as Status } from '@grpc/grpc-js';
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';
import { checkMetaValue, requireId, validateContainerConfig, validatePodConfig } from './validate_config';
import { requireImageLookup } from './validate';
import { containerConfig, podConfig } from '../oci/test-fixtures';

const pod = (over: Partial<PodSandboxConfig__Output> = {}): PodSandboxConfig__Output =>
  podConfig({ metadata: { name: 'p', namespace: 'ns', uid: 'u', attempt: 0 }, hostname: 'p', ...over });
const ctr = (over: Partial<ContainerConfig__Output> = {}): ContainerConfig__Output =>
  containerConfig({ log_path: 'c/0.log', ...over });

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: number }).code;
  }
  return undefined;
}

test('a sane pod config passes', () => {
  expect(validatePodConfig(pod())).toBeTruthy();
});

test.each([
  ['missing config', () => validatePodConfig(null)],
  ['missing metadata', () => validatePodConfig(pod({ metadata: null }))],
  [
    'empty name',
    () => validatePodConfig(pod({ metadata: { name: '', namespace: 'n', uid: 'u', attempt: 0 } })),
  ],
  [
    '; in namespace',
    () => validatePodConfig(pod({ metadata: { name: 'a', namespace: 'n;x', uid: 'u', attempt: 0 } })),
  ],
  [
    '= in uid',
    () => validatePodConfig(pod({ metadata: { name: 'a', namespace: 'n', uid: 'K=V', attempt: 0 } })),
  ],
  [
    'NUL in name',
    () => validatePodConfig(pod({ metadata: { name: 'a\0b', namespace: 'n', uid: 'u', attempt: 0 } })),
  ],
  [
    'a megabyte name',
    () =>
      validatePodConfig(
        pod({ metadata: { name: 'a'.repeat(1 << 20), namespace: 'n', uid: 'u', attempt: 0 } }),
      ),
  ],
  ['relative log dir', () => validatePodConfig(pod({ log_directory: 'logs' }))],
  ['bad hostname', () => validatePodConfig(pod({ hostname: 'has space' }))],
  [
    'port out of range',
    () =>
      validatePodConfig(
        pod({ port_mappings: [{ protocol: 'TCP', container_port: 70000, host_port: 0, host_ip: '' }] }),
      ),
  ],
  ['container without image', () => validateContainerConfig(ctr({ image: null }))],
  ['absolute log path', () => validateContainerConfig(ctr({ log_path: '/etc/passwd' }))],
  ['log path escaping', () => validateContainerConfig(ctr({ log_path: '../../x.log' }))],
  [
    'relative mount',
    () => validateContainerConfig(ctr({ mounts: [{ container_path: 'x', host_path: '/tmp' } as never] })),
  ],
  ['env key with =', () => validateContainerConfig(ctr({ envs: [{ key: 'A=B', value: Buffer.from('') }] }))],
  [
    'pod run_as_group without run_as_user',
    () => validatePodConfig(podConfig({}, { run_as_group: { value: '1000' } })),
  ],
  [
    'container run_as_group without run_as_user or run_as_username',
    () =>
      validateContainerConfig(containerConfig({ log_path: 'c/0.log' }, { run_as_group: { value: '1000' } })),
  ],
  ['bad id', () => requireId('../../etc', 'container_id')],
  ['empty id', () => requireId('', 'container_id')],
  ['bad image reference', () => requireImageLookup('library/UPPER', 'image.image')],
])('%s is INVALID_ARGUMENT', (_name, fn) => {
  expect(code(fn)).toBe(Status.INVALID_ARGUMENT);
});

test('error messages quote user text shortened', () => {
  let msg = '';
  try {
    checkMetaValue('x;'.repeat(100_000), 'config.metadata.name');
  } catch (e) {
    msg = (e as Error).message;
  }
  expect(msg.length).toBeLessThan(300);
  expect(msg).toContain('config.metadata.name');
});

test('image ids and id prefixes pass the lookup check', () => {
  expect(requireImageLookup('sha256:' + 'a'.repeat(64), 'f')).toBeTruthy();
  expect(requireImageLookup('abcdef012345', 'f')).toBeTruthy();
});

test('run_as_group passes with run_as_user (pod, container) or run_as_username (container)', () => {
  expect(
    validatePodConfig(podConfig({}, { run_as_user: { value: '0' }, run_as_group: { value: '1' } })),
  ).toBeTruthy();
  expect(
    validateContainerConfig(
      containerConfig({ log_path: 'c/0.log' }, { run_as_user: { value: '0' }, run_as_group: { value: '1' } }),
    ),
  ).toBeTruthy();
  expect(
    validateContainerConfig(
      containerConfig({ log_path: 'c/0.log' }, { run_as_username: 'bob', run_as_group: { value: '1' } }),
    ),
  ).toBeTruthy();
});
