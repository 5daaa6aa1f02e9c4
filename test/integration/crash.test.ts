// kill -9 at every step of RunPodSandbox and CreateContainer: berthd dies at a named crash point
// (BERTH_CRASH_AT), then starts again and must roll the half-done operation back completely:
// no record, mount, network namespace, CNI IP, snapshot, runc container or conmon left. A kill -9
// between StartContainer's runc start and its record must leave the container RUNNING, not CREATED.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import type { TestDaemon } from '../lab/berthd';
import type { LabNetwork } from '../lab/cni';
import { KUBELET_NAMESPACES, startHarness, type Harness } from '../lab/harness';
import { daemonMounts } from '../lab/leaks';

let h: Harness;
let d: TestDaemon;
let netw: LabNetwork;

const podConfig = (): PodSandboxConfig => h.podConfig();
/** kubelet's usual pod (pid CONTAINER): no infra container, its IPC/UTS namespaces pinned */
const noInfraPod = (): PodSandboxConfig =>
  h.podConfig({
    linux: { security_context: { namespace_options: KUBELET_NAMESPACES } },
  });
const ctrConfig = (): ContainerConfig => h.ctrConfig('c', ['sleep', '3600']);

/** Everything that would show a leak of this daemon (once its background cleanup is done). */
async function traces(): Promise<Record<string, unknown>> {
  if (d.proc.exitCode === null && d.proc.signalCode === null) await d.settled();
  const mounts = await daemonMounts(d);
  const dir = (p: string): string[] =>
    fs.existsSync(p) ? fs.readdirSync(p).filter((x) => !x.startsWith('.')) : [];
  const runc = execFileSync('runc', ['--root', path.join(d.state, 'runtime', 'runc'), 'list', '-q'], {
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .filter(Boolean);
  const conmons = fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const c = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return c.startsWith('/usr/bin/conmon') && c.includes(d.state);
      } catch {
        return false;
      }
    });
  return {
    mounts,
    netns: dir(path.join(d.state, 'netns')),
    podns: dir(path.join(d.state, 'podns')),
    ips: netw.allocated(),
    snapshots: dir(path.join(d.root, 'snapshots', 'snapshots')),
    sandboxes: dir(path.join(d.root, 'sandboxes')),
    containers: dir(path.join(d.root, 'containers')),
    bundles: dir(path.join(d.state, 'bundles')),
    cniCache: dir(path.join(d.root, 'cni-cache')),
    runc,
    conmons,
  };
}

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthcr0', subnet: '10.246.0.0/24', prefix: 'crash' });
  ({ d, netw } = h);
  await call(d.clients.image, 'PullImage', { image: { image: `${h.reg.host}/pause:3.10` } });
});

afterAll(async () => {
  await h?.cleanup();
});

test.each([
  ['sandbox-run:netns-created', 'with'],
  ['sandbox-run:cni-added', 'with'],
  ['sandbox-run:infra-created', 'with'],
  ['sandbox-run:netns-created', 'without'],
  ['sandbox-run:cni-added', 'without'],
])(
  'RunPodSandbox killed at %s (a pod %s an infra container) is rolled back on restart',
  async (point, infra) => {
    const clean = await traces();
    await d.restart({ BERTH_CRASH_AT: point });
    const config = infra === 'with' ? podConfig() : noInfraPod();
    const res = await call(d.clients.runtime, 'RunPodSandbox', { config }).catch((e: unknown) => e);
    expect(res).toBeInstanceOf(Error);
    await d.exited();
    expect(d.proc.signalCode).toBe('SIGKILL');
    // without one, the IPC/UTS pins were made before the kill (so the check below can fail)
    if (infra === 'without') expect(fs.readdirSync(path.join(d.state, 'podns')).length).toBe(2);
    await d.restart({});
    expect((await call(d.clients.runtime, 'ListPodSandbox', {})).items).toEqual([]);
    expect(await traces()).toEqual(clean);
  },
);

test.each([
  'container-create:rootfs-mounted',
  'container-create:bundle-written',
  'container-create:runtime-created',
])('CreateContainer killed at %s is rolled back on restart', async (point) => {
  const pod = podConfig();
  const podId = (await call(d.clients.runtime, 'RunPodSandbox', { config: pod })).pod_sandbox_id;
  const withPod = await traces();
  await d.restart({ BERTH_CRASH_AT: point });
  const res = await call(d.clients.runtime, 'CreateContainer', {
    pod_sandbox_id: podId,
    config: ctrConfig(),
    sandbox_config: pod,
  }).catch((e: unknown) => e);
  expect(res).toBeInstanceOf(Error);
  await d.exited();
  await d.restart({});
  expect((await call(d.clients.runtime, 'ListContainers', {})).containers).toEqual([]);
  expect(await traces()).toEqual(withPod);
  // the pod is intact and the container name is free again
  await h.startCtr(podId, pod, ctrConfig());
  await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: podId });
  await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId });
});

test('StartContainer killed after runc start, before its record: RUNNING after restart, and watched', async () => {
  const pod = podConfig();
  const podId = (await call(d.clients.runtime, 'RunPodSandbox', { config: pod })).pod_sandbox_id;
  const { container_id: id } = await call(d.clients.runtime, 'CreateContainer', {
    pod_sandbox_id: podId,
    config: h.ctrConfig('c', ['sh', '-c', 'trap "exit 7" TERM; sleep 3600 & wait']),
    sandbox_config: pod,
  });
  await d.restart({ BERTH_CRASH_AT: 'container-start:runtime-started' });
  const res = await call(d.clients.runtime, 'StartContainer', { container_id: id }).catch((e: unknown) => e);
  expect(res).toBeInstanceOf(Error);
  await d.exited();
  expect(d.proc.signalCode).toBe('SIGKILL');
  await d.restart({});
  const st = await call(d.clients.runtime, 'ContainerStatus', { container_id: id });
  expect(st.status?.state).toBe('CONTAINER_RUNNING');
  expect(Number(st.status?.started_at)).toBeGreaterThan(0);
  // the exit is watched again: a stop is recorded with the process's own exit code
  await call(d.clients.runtime, 'StopContainer', { container_id: id, timeout: 10 });
  const after = await call(d.clients.runtime, 'ContainerStatus', { container_id: id });
  expect([after.status?.state, after.status?.exit_code]).toEqual(['CONTAINER_EXITED', 7]);
  await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: podId });
  await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId });
});

test('RemoveContainer: a removal whose cleanup is cut by kill -9 is finished on restart', async () => {
  const pod = podConfig();
  const podId = (await call(d.clients.runtime, 'RunPodSandbox', { config: pod })).pod_sandbox_id;
  const withPod = await traces();
  const c = await call(d.clients.runtime, 'CreateContainer', {
    pod_sandbox_id: podId,
    config: ctrConfig(),
    sandbox_config: pod,
  });
  await call(d.clients.runtime, 'StartContainer', { container_id: c.container_id });
  await call(d.clients.runtime, 'StopContainer', { container_id: c.container_id, timeout: 0 });
  // the container's rootfs, bundle, record and runc state exist (so the check below can fail)
  expect(await traces()).not.toEqual(withPod);
  await d.restart({ BERTH_CRASH_AT: 'container-remove:cleanup' });
  // answered or not (the kill may beat the answer), the removal is durable from here on
  await call(d.clients.runtime, 'RemoveContainer', { container_id: c.container_id }).catch(() => undefined);
  await d.exited();
  expect(d.proc.signalCode).toBe('SIGKILL');
  await d.restart({});
  expect((await call(d.clients.runtime, 'ListContainers', {})).containers).toEqual([]);
  expect(await traces()).toEqual(withPod);
  await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: podId });
  await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId });
});

test.each([
  ['with', podConfig],
  ['without', noInfraPod],
])(
  'RemovePodSandbox of a pod %s an infra container killed during its background cleanup: the restart finishes it',
  async (_, makePod) => {
    const clean = await traces();
    const pod = makePod();
    const podId = (await call(d.clients.runtime, 'RunPodSandbox', { config: pod })).pod_sandbox_id;
    await h.startCtr(podId, pod, ctrConfig());
    await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: podId });
    // the pod's and the container's rootfs, bundles, records and runc state exist (so the check
    // below can fail)
    expect(await traces()).not.toEqual(clean);
    await d.restart({ BERTH_CRASH_AT: 'sandbox-remove:cleanup' });
    // answered or not (the kill may beat the answer), the removal is durable from here on
    await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId }).catch(() => undefined);
    await d.exited();
    expect(d.proc.signalCode).toBe('SIGKILL');
    // the marked record is what the restart goes by
    expect(fs.readdirSync(path.join(d.root, 'sandboxes'))).toContain(`${podId}.json.removing`);
    await d.restart({});
    expect((await call(d.clients.runtime, 'ListPodSandbox', {})).items).toEqual([]);
    expect((await call(d.clients.runtime, 'ListContainers', {})).containers).toEqual([]);
    expect(await traces()).toEqual(clean);
    // the pod's name is free again
    const again = (await call(d.clients.runtime, 'RunPodSandbox', { config: pod })).pod_sandbox_id;
    await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: again });
    await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: again });
  },
);
