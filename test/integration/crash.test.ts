// kill -9 at every step of RunPodSandbox and CreateContainer: berthd dies at a named crash point
// (BERTH_CRASH_AT), then starts again and must roll the half-done operation back completely:
// no record, mount, network namespace, CNI IP, snapshot, runc container or conmon left.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { startBerthd, type TestDaemon } from '../lab/berthd';
import { startRegistry, type LabRegistry } from '../lab/registry';
import { busyboxLayer, pushImage, pushPause } from '../lab/images';
import { makeLabNetwork, type LabNetwork } from '../lab/cni';

let reg: LabRegistry;
let d: TestDaemon;
let netw: LabNetwork;
let logDir: string;
let busybox: string;
let n = 0;

function podConfig(): PodSandboxConfig {
  const name = `crash${++n}`;
  return {
    metadata: { name, namespace: 'it', uid: `uid-${name}-${process.pid}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(logDir, name),
    linux: {},
  };
}

function ctrConfig(): ContainerConfig {
  return {
    metadata: { name: 'c', attempt: 0 },
    image: { image: busybox },
    command: ['sleep', '3600'],
    log_path: 'c.log',
    linux: {},
  };
}

/** Everything that would show a leak of this daemon. */
function traces(): Record<string, unknown> {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m.startsWith(d.root) || m.startsWith(d.state)) && m !== path.join(d.state, 'netns'));
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
  reg = await startRegistry();
  await pushPause(reg);
  busybox = (await pushImage(reg, 'library/busybox', 'latest', { layers: [busyboxLayer()] })).reference;
  netw = makeLabNetwork('berthcr0', '10.246.0.0/24');
  logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-logs-'));
  d = await startBerthd({
    pause_image: `${reg.host}/pause:3.10`,
    cni: { conf_dir: netw.confDir, bin_dirs: ['/usr/lib/cni'] },
  });
  await call(d.clients.image, 'PullImage', { image: { image: busybox } });
  await call(d.clients.image, 'PullImage', { image: { image: `${reg.host}/pause:3.10` } });
});

afterAll(async () => {
  try {
    await d?.cleanup();
  } finally {
    await reg?.stop();
    netw?.cleanup();
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  }
});

test.each(['sandbox-run:netns-created', 'sandbox-run:cni-added', 'sandbox-run:infra-created'])(
  'RunPodSandbox killed at %s is rolled back on restart',
  async (point) => {
    const clean = traces();
    await d.restart({ BERTH_CRASH_AT: point });
    const res = await call(d.clients.runtime, 'RunPodSandbox', { config: podConfig() }).catch(
      (e: unknown) => e,
    );
    expect(res).toBeInstanceOf(Error);
    await d.exited();
    expect(d.proc.signalCode).toBe('SIGKILL');
    await d.restart({});
    expect((await call(d.clients.runtime, 'ListPodSandbox', {})).items).toEqual([]);
    expect(traces()).toEqual(clean);
  },
);

test.each([
  'container-create:rootfs-mounted',
  'container-create:bundle-written',
  'container-create:runtime-created',
])('CreateContainer killed at %s is rolled back on restart', async (point) => {
  const pod = podConfig();
  const podId = (await call(d.clients.runtime, 'RunPodSandbox', { config: pod })).pod_sandbox_id;
  const withPod = traces();
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
  expect(traces()).toEqual(withPod);
  // the pod is intact and the container name is free again
  const c = await call(d.clients.runtime, 'CreateContainer', {
    pod_sandbox_id: podId,
    config: ctrConfig(),
    sandbox_config: pod,
  });
  await call(d.clients.runtime, 'StartContainer', { container_id: c.container_id });
  await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: podId });
  await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId });
});
