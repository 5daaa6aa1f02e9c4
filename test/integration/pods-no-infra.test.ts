// Pods without an infra container (runtime.drop_infra_ctr, the default): a pod whose containers
// share no PID namespace (kubelet's usual pid CONTAINER) gets its IPC and UTS namespaces pinned as
// files instead of a pause process. Checked from inside the containers (shared IPC and UTS, the
// hostname, the network), and on the host (no infra process, no pins left after removal, a
// restart that keeps the pod ready, and one that finds its pins gone makes it NOTREADY).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { status as Status } from '@grpc/grpc-js';
import { call } from '../../api/client';
import type { PodSandboxConfig } from '../../api/generated';
import { KUBELET_NAMESPACES, startHarness, type Harness } from '../lab/harness';
import { unmount } from '../../internal/util/mount';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthni0', subnet: '10.249.0.0/24' });
});

afterAll(async () => {
  await h?.cleanup();
});

/** A pod as kubelet sends one without shareProcessNamespace. */
const kubeletPod = (name: string, pid: 'CONTAINER' | 'POD' = 'CONTAINER'): PodSandboxConfig =>
  h.podConfig({
    hostname: name,
    metadata: { name, namespace: 'noinfra', uid: `uid-${name}`, attempt: 0 },
    linux: {
      cgroup_parent: '',
      security_context: { namespace_options: { ...KUBELET_NAMESPACES, pid } },
    },
  });

const podDir = (): string => path.join(h.d.state, 'podns');
const pins = (): string[] => (fs.existsSync(podDir()) ? fs.readdirSync(podDir()).sort() : []);
const verbose = async (id: string): Promise<{ pid: number }> =>
  JSON.parse(
    (await call(h.d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: id, verbose: true })).info!.info!,
  ) as { pid: number };
const runcList = (): string =>
  execFileSync('runc', ['--root', path.join(h.d.state, 'runc'), 'list', '-q'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString();

test('containers share the pinned IPC and UTS namespaces and the network; no infra process runs', async () => {
  const pod = kubeletPod('shared');
  const podId = await h.runPod(pod);
  expect((await verbose(podId)).pid).toBe(0);
  expect(pins()).toEqual([`${podId}.ipc`, `${podId}.uts`]);
  expect(runcList()).not.toContain(podId);

  const a = await h.startCtr(podId, pod, h.ctrConfig('a', ['sh', '-c', 'sleep 3600']));
  const b = await h.startCtr(podId, pod, h.ctrConfig('b', ['sh', '-c', 'sleep 3600']));
  const ns = async (id: string, t: string): Promise<string> =>
    (await h.exec(id, ['readlink', `/proc/self/ns/${t}`])).out.trim();
  for (const t of ['ipc', 'uts', 'net']) expect(await ns(a, t)).toBe(await ns(b, t));
  // the pinned namespaces themselves, not copies: the pins' inodes
  const inode = (p: string): string => `[${fs.statSync(p).ino}]`;
  expect(await ns(a, 'ipc')).toBe(`ipc:${inode(path.join(podDir(), `${podId}.ipc`))}`);
  expect(await ns(a, 'uts')).toBe(`uts:${inode(path.join(podDir(), `${podId}.uts`))}`);
  // each has its own PID namespace (pid CONTAINER), its command as PID 1
  expect(await ns(a, 'pid')).not.toBe(await ns(b, 'pid'));
  expect((await h.exec(a, ['cat', '/proc/1/cmdline'])).out).toContain('sleep');
  expect((await h.exec(a, ['hostname'])).out.trim()).toBe('shared');
  // and the pod has its IP on the bridge, seen from both
  const ips = (await call(h.d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: podId })).status!
    .network!;
  expect((await h.exec(b, ['ip', '-4', 'addr'])).out).toContain(ips.ip);

  const stats = await call(h.d.clients.runtime, 'PodSandboxStats', { pod_sandbox_id: podId });
  expect(stats.stats!.linux!.containers.length).toBe(2);
  expect(stats.stats!.linux!.network?.interfaces?.length ?? 0).toBeGreaterThan(0);

  await call(h.d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: podId });
  expect(pins()).toEqual([]); // released at stop, as the pause process's death would
  await expect(
    call(h.d.clients.runtime, 'CreateContainer', {
      pod_sandbox_id: podId,
      config: h.ctrConfig('late', ['true']),
      sandbox_config: pod,
    }),
  ).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION });
  await h.removePod(podId);
  expect(pins()).toEqual([]);
});

test('host network and host IPC pods pin only what they do not share with the host', async () => {
  const hostUts = fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
  const inode = (p: string): string => String(fs.statSync(p).ino);
  const hostNs = (t: string): string => fs.readlinkSync(`/proc/self/ns/${t}`);
  // host network: no netns, no UTS pin (UTS goes with the network), an IPC pin of its own
  const hn = kubeletPod('hostnet');
  hn.linux!.security_context!.namespace_options!.network = 'NODE';
  const hnId = await h.runPod(hn);
  expect(pins()).toEqual([`${hnId}.ipc`]);
  const a = await h.startCtr(hnId, hn, h.ctrConfig('a', ['sh', '-c', 'sleep 3600']));
  const ns = async (id: string, t: string): Promise<string> =>
    (await h.exec(id, ['readlink', `/proc/self/ns/${t}`])).out.trim();
  expect(await ns(a, 'uts')).toBe(hostNs('uts'));
  expect(await ns(a, 'net')).toBe(hostNs('net'));
  expect(await ns(a, 'ipc')).toBe(`ipc:[${inode(path.join(podDir(), `${hnId}.ipc`))}]`);
  expect((await h.exec(a, ['hostname'])).out.trim()).toBe(hostUts);
  await h.removePod(hnId);
  // host IPC, and no hostname given: a UTS pin that keeps the host's name, no IPC pin
  const hi = kubeletPod('hostipc');
  hi.hostname = '';
  hi.linux!.security_context!.namespace_options!.ipc = 'NODE';
  const hiId = await h.runPod(hi);
  expect(pins()).toEqual([`${hiId}.uts`]);
  const b = await h.startCtr(hiId, hi, h.ctrConfig('b', ['sh', '-c', 'sleep 3600']));
  expect(await ns(b, 'ipc')).toBe(hostNs('ipc'));
  expect(await ns(b, 'uts')).not.toBe(hostNs('uts'));
  expect((await h.exec(b, ['hostname'])).out.trim()).toBe(hostUts);
  await h.removePod(hiId);
  expect(pins()).toEqual([]);
});

test('a pod that shares its PID namespace keeps its infra container', async () => {
  const pod = kubeletPod('pidpod', 'POD');
  const podId = await h.runPod(pod);
  expect((await verbose(podId)).pid).toBeGreaterThan(0);
  expect(pins()).toEqual([]);
  const a = await h.startCtr(podId, pod, h.ctrConfig('a', ['sh', '-c', 'sleep 3600']));
  expect((await h.exec(a, ['cat', '/proc/1/cmdline'])).out).toContain('pause');
  await h.removePod(podId);
});

test('a restart keeps the pod ready with its pins; pins lost meanwhile make it NOTREADY', async () => {
  const keep = kubeletPod('keep');
  const lose = kubeletPod('lose');
  const keepId = await h.runPod(keep);
  const loseId = await h.runPod(lose);
  const ctr = await h.startCtr(keepId, keep, h.ctrConfig('a', ['sh', '-c', 'sleep 3600']));
  await h.d.kill9();
  // what a reboot does to /run: the pins are gone
  for (const t of ['ipc', 'uts']) {
    const p = path.join(podDir(), `${loseId}.${t}`);
    await unmount(p);
    fs.rmSync(p);
  }
  await h.d.restart();
  const state = async (id: string): Promise<string | undefined> =>
    (await call(h.d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: id })).status!.state;
  expect(await state(keepId)).toBe('SANDBOX_READY');
  expect(await state(loseId)).toBe('SANDBOX_NOTREADY');
  expect((await h.exec(ctr, ['hostname'])).out.trim()).toBe('keep');
  // the ready pod still takes new containers, in the same namespaces
  const b = await h.startCtr(keepId, keep, h.ctrConfig('b', ['sh', '-c', 'sleep 3600']));
  expect((await h.exec(b, ['readlink', '/proc/self/ns/uts'])).out).toBe(
    (await h.exec(ctr, ['readlink', '/proc/self/ns/uts'])).out,
  );
  await h.removePod(keepId);
  await h.removePod(loseId);
  expect(pins()).toEqual([]);
});

test('with runtime.drop_infra_ctr false every pod has its infra container', async () => {
  const h2 = await startHarness({
    bridge: 'berthni1',
    subnet: '10.249.1.0/24',
    config: { runtime: { drop_infra_ctr: false } },
  });
  try {
    const pod = h2.podConfig({
      linux: { security_context: { namespace_options: KUBELET_NAMESPACES } },
    });
    const podId = await h2.runPod(pod);
    const info = JSON.parse(
      (await call(h2.d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: podId, verbose: true })).info!
        .info!,
    ) as { pid: number };
    expect(info.pid).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(h2.d.state, 'podns'))).toBe(false);
    await h2.removePod(podId);
  } finally {
    await h2.cleanup();
  }
});
