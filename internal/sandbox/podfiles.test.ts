import { hostsFile, resolvConfFrom } from './podfiles';
import { capabilityArgs } from './service';
import { withPodNamespaces } from '../container/defaults';
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';

test('resolv.conf from the pod DNS config; none means the host one', () => {
  expect(
    resolvConfFrom({ servers: ['10.0.0.10', '10.0.0.11'], searches: ['a.svc', 'svc'], options: ['ndots:5'] }),
  ).toBe('search a.svc svc\nnameserver 10.0.0.10\nnameserver 10.0.0.11\noptions ndots:5\n');
  expect(resolvConfFrom(null)).toBeUndefined();
  expect(resolvConfFrom({ servers: [], searches: [], options: [] })).toBeUndefined();
});

test('/etc/hosts names the pod IPs', () => {
  const h = hostsFile('web', ['10.1.0.5', 'fd00::5']);
  expect(h).toMatch(/^127\.0\.0\.1\tlocalhost$/m);
  expect(h).toMatch(/^10\.1\.0\.5\tweb$/m);
  expect(h).toMatch(/^fd00::5\tweb$/m);
});

test('CNI capability args: host ports only, protocols lower-cased, DNS passed', () => {
  const cfg = {
    port_mappings: [
      { protocol: 'TCP', container_port: 80, host_port: 8080, host_ip: '' },
      { protocol: 'UDP', container_port: 53, host_port: 0, host_ip: '' },
      { protocol: 'SCTP', container_port: 9, host_port: 9009, host_ip: '127.0.0.1' },
    ],
    dns_config: { servers: ['1.1.1.1'], searches: [], options: [] },
  } as unknown as PodSandboxConfig__Output;
  expect(capabilityArgs(cfg)).toEqual({
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: undefined },
      { hostPort: 9009, containerPort: 9, protocol: 'sctp', hostIP: '127.0.0.1' },
    ],
    dns: { servers: ['1.1.1.1'], searches: [], options: [] },
  });
});

test("a container without namespace options takes the pod's", () => {
  const podNs = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: null };
  const pod = {
    linux: { security_context: { namespace_options: podNs } },
  } as unknown as PodSandboxConfig__Output;
  const bare = { linux: null } as unknown as ContainerConfig__Output;
  expect(withPodNamespaces(bare, pod).linux?.security_context?.namespace_options).toEqual(podNs);
  const own = {
    linux: { security_context: { namespace_options: { ...podNs, network: 'POD' } } },
  } as unknown as ContainerConfig__Output;
  expect(withPodNamespaces(own, pod)).toBe(own);
});
