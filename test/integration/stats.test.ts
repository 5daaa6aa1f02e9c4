// Container and pod stats and metrics end to end: berthd with real runc, conmon and a CNI bridge;
// containers burn CPU, hold memory and serve traffic, and the figures must move accordingly.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import type {
  ContainerConfig,
  ContainerStats__Output,
  PodSandboxConfig,
  PodSandboxStats__Output,
} from '../../api/generated';
import { startBerthd, type TestDaemon } from '../lab/berthd';
import { startRegistry, type LabRegistry } from '../lab/registry';
import { busyboxLayer, pushImage, pushPause } from '../lab/images';
import { makeLabNetwork, type LabNetwork } from '../lab/cni';

let reg: LabRegistry;
let d: TestDaemon;
let netw: LabNetwork;
let logDir: string;
let busybox: string;
/** pod A: no cgroup_parent (stats summed from its containers); pod B: its own cgroup parent */
let podA: PodSandboxConfig;
let podB: PodSandboxConfig;
let podAId: string;
let podBId: string;
let burn: string;
let mem: string;
let web: string;
let idle: string;
const parentRoot = `/berthstats-${process.pid}`;
const MEM_LIMIT = 256 * 1024 * 1024;
const REFRESH_S = 2;

function podConfig(
  name: string,
  labels: Record<string, string>,
  extra: Partial<PodSandboxConfig> = {},
): PodSandboxConfig {
  return {
    metadata: { name, namespace: 'stats', uid: `uid-${name}-${process.pid}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(logDir, name),
    labels,
    linux: {},
    ...extra,
  };
}

function ctrConfig(name: string, command: string[], extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return {
    metadata: { name, attempt: 0 },
    image: { image: busybox },
    command,
    log_path: `${name}/0.log`,
    labels: { role: name },
    linux: {},
    ...extra,
  };
}

async function startCtr(podId: string, pod: PodSandboxConfig, cfg: ContainerConfig): Promise<string> {
  const c = await call(d.clients.runtime, 'CreateContainer', {
    pod_sandbox_id: podId,
    config: cfg,
    sandbox_config: pod,
  });
  await call(d.clients.runtime, 'StartContainer', { container_id: c.container_id });
  return c.container_id;
}

async function exec(id: string, cmd: string[]): Promise<{ out: string; code: number }> {
  const r = await call(d.clients.runtime, 'ExecSync', { container_id: id, cmd, timeout: 30 });
  return { out: Buffer.from(r.stdout).toString() + Buffer.from(r.stderr).toString(), code: r.exit_code };
}

async function cstats(id: string): Promise<ContainerStats__Output> {
  return (await call(d.clients.runtime, 'ContainerStats', { container_id: id })).stats!;
}

async function pstats(id: string): Promise<PodSandboxStats__Output> {
  return (await call(d.clients.runtime, 'PodSandboxStats', { pod_sandbox_id: id })).stats!;
}

const n = (v: { value: string } | null | undefined): number => Number(v?.value ?? NaN);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Removes the pod B parent cgroups runc made below each hierarchy (runc removes only leaves). */
function removeParentCgroups(): void {
  for (const h of fs.readdirSync('/sys/fs/cgroup')) {
    for (const rel of [`${parentRoot}/podb`, parentRoot]) {
      try {
        fs.rmdirSync(path.join('/sys/fs/cgroup', h, rel));
      } catch {
        // not made in this hierarchy, or already gone
      }
    }
  }
}

beforeAll(async () => {
  reg = await startRegistry();
  await pushPause(reg);
  busybox = (await pushImage(reg, 'library/busybox', 'latest', { layers: [busyboxLayer()] })).reference;
  netw = makeLabNetwork('berthsx0', '10.254.0.0/24');
  logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-stats-logs-'));
  d = await startBerthd({
    pause_image: `${reg.host}/pause:3.10`,
    cni: { conf_dir: netw.confDir, bin_dirs: ['/usr/lib/cni'] },
    // writable layers are measured in the background: every 2 s here (default 10 s)
    stats: { disk_usage_refresh_seconds: REFRESH_S },
  });
  await call(d.clients.image, 'PullImage', { image: { image: busybox } });
  podA = podConfig('poda', { app: 'a' });
  podB = podConfig('podb', { app: 'b' }, { linux: { cgroup_parent: `${parentRoot}/podb` } });
  podAId = (await call(d.clients.runtime, 'RunPodSandbox', { config: podA })).pod_sandbox_id;
  podBId = (await call(d.clients.runtime, 'RunPodSandbox', { config: podB })).pod_sandbox_id;
  burn = await startCtr(podAId, podA, ctrConfig('burn', ['sh', '-c', 'while :; do :; done']));
  mem = await startCtr(
    podAId,
    podA,
    ctrConfig('mem', ['sleep', '3600'], {
      linux: { resources: { memory_limit_in_bytes: String(MEM_LIMIT) } },
    }),
  );
  web = await startCtr(
    podAId,
    podA,
    ctrConfig('web', [
      'sh',
      '-c',
      'mkdir -p /www && head -c 1000000 /dev/zero > /www/big && exec httpd -f -p 8080 -h /www',
    ]),
  );
  idle = await startCtr(podBId, podB, ctrConfig('idle', ['sleep', '3600']));
}, 120_000);

afterAll(async () => {
  try {
    if (d) {
      for (const id of [podAId, podBId].filter(Boolean)) {
        await call(d.clients.runtime, 'StopPodSandbox', { pod_sandbox_id: id }).catch(() => undefined);
        await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: id }).catch(() => undefined);
      }
      await d.cleanup();
    }
  } finally {
    removeParentCgroups();
    await reg?.stop();
    netw?.cleanup();
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  }
});

/** Host CPU time (all CPUs) as busy and total jiffies, from /proc/stat. */
function hostCpu(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

test('CPU usage grows while a container burns CPU, at about one core', async () => {
  const first = await cstats(burn);
  expect(first.attributes?.id).toBe(burn);
  expect(first.attributes?.metadata?.name).toBe('burn');
  const p1 = await pstats(podAId);
  // Other suites may share this 2-core machine. A window in which the host's CPUs were saturated
  // (so the burner honestly got less than half a core) is measured again, up to 3 windows.
  const ncpu = os.cpus().length;
  let prev = first;
  let second = first;
  let cores = 0;
  let saturated = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    const h0 = hostCpu();
    await sleep(2000);
    second = await cstats(burn);
    const h1 = hostCpu();
    cores = n(second.cpu?.usage_nano_cores);
    // the rate is what the counters say happened between the two samples
    const dUsage = n(second.cpu?.usage_core_nano_seconds) - n(prev.cpu?.usage_core_nano_seconds);
    const dT = Number(BigInt(second.cpu!.timestamp) - BigInt(prev.cpu!.timestamp));
    expect(Math.abs(cores - (dUsage / dT) * 1e9)).toBeLessThan(0.1e9);
    saturated = (h1.busy - h0.busy) / (h1.total - h0.total) > 0.9 && ncpu <= 2;
    if (cores > 0.5e9 || !saturated) break;
    prev = second;
  }
  const p2 = await pstats(podAId);
  expect(n(second.cpu?.usage_core_nano_seconds)).toBeGreaterThan(
    n(first.cpu?.usage_core_nano_seconds) + 0.5e9,
  );
  expect(BigInt(second.cpu!.timestamp)).toBeGreaterThan(BigInt(first.cpu!.timestamp));
  if (saturated && cores <= 0.5e9) {
    console.warn(`host CPUs saturated by others: the burner got ${(cores / 1e9).toFixed(2)} cores`);
    expect(cores).toBeGreaterThan(0.2e9);
  } else expect(cores).toBeGreaterThan(0.5e9);
  expect(cores).toBeLessThan(1.2e9);
  // the pod (its containers summed) burns as much
  expect(n(p2.linux?.cpu?.usage_core_nano_seconds)).toBeGreaterThan(
    n(p1.linux?.cpu?.usage_core_nano_seconds),
  );
  expect(n(p2.linux?.cpu?.usage_nano_cores)).toBeGreaterThan(0.2e9);
  // an idle container in the other pod does not
  expect(n((await cstats(idle)).cpu?.usage_nano_cores)).toBeLessThan(0.1e9);
});

test('working set grows after a container holds 50 MB; available_bytes follows the limit', async () => {
  const before = await cstats(mem);
  const ws0 = n(before.memory?.working_set_bytes);
  expect(ws0).toBeGreaterThan(0);
  expect(n(before.memory?.available_bytes)).toBe(MEM_LIMIT - ws0);
  // tmpfs pages are charged to the writer's cgroup and are not inactive file cache
  expect((await exec(mem, ['sh', '-c', 'head -c 52428800 /dev/zero > /dev/shm/big'])).code).toBe(0);
  const after = await cstats(mem);
  const ws1 = n(after.memory?.working_set_bytes);
  expect(ws1 - ws0).toBeGreaterThan(45 * 1024 * 1024);
  expect(n(after.memory?.usage_bytes)).toBeGreaterThanOrEqual(ws1);
  expect(n(after.memory?.available_bytes)).toBe(MEM_LIMIT - ws1);
  expect(n(after.memory?.page_faults)).toBeGreaterThan(0);
  expect(after.memory?.rss_bytes).toBeTruthy();
  // the writable layer, on the image filesystem: the background walker's figure, which catches up
  // with a write within one refresh interval (plus the walk)
  const fsInfo = await call(d.clients.image, 'ImageFsInfo', {});
  expect(after.writable_layer?.fs_id?.mountpoint).toBe(fsInfo.image_filesystems[0].fs_id?.mountpoint);
  const used0 = n(after.writable_layer?.used_bytes);
  expect((await exec(mem, ['sh', '-c', 'head -c 2000000 /dev/zero > /blob'])).code).toBe(0);
  const written = Date.now();
  let later = await cstats(mem);
  while (
    n(later.writable_layer?.used_bytes) - used0 < 2_000_000 &&
    Date.now() - written < 4 * REFRESH_S * 1000
  ) {
    await sleep(100);
    later = await cstats(mem);
  }
  expect(n(later.writable_layer?.used_bytes) - used0).toBeGreaterThanOrEqual(2_000_000);
  expect(n(later.writable_layer?.inodes_used)).toBeGreaterThan(n(after.writable_layer?.inodes_used));
  // the same figure in the list call (one cache, no walk per call)
  const listed = (await call(d.clients.runtime, 'ListContainerStats', { filter: { id: mem } })).stats[0];
  expect(n(listed?.writable_layer?.used_bytes)).toBeGreaterThanOrEqual(n(later.writable_layer?.used_bytes));
  await exec(mem, ['rm', '-f', '/dev/shm/big']);
});

test("a pod's rx/tx bytes grow after traffic over the bridge", async () => {
  const st = await call(d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: podAId });
  const ip = st.status!.network!.ip;
  expect(ip).toMatch(/^10\.254\.0\.\d+$/);
  const before = await pstats(podAId);
  const eth0 = before.linux?.network?.default_interface;
  expect(eth0?.name).toBe('eth0');
  let body: Buffer | undefined;
  for (let i = 0; i < 50 && !body; i++) {
    body = await fetch(`http://${ip}:8080/big`)
      .then(async (r) => (r.ok ? Buffer.from(await r.arrayBuffer()) : undefined))
      .catch(() => undefined);
    if (!body) await sleep(100);
  }
  expect(body?.length).toBe(1_000_000);
  const after = await pstats(podAId);
  const e1 = after.linux!.network!.default_interface!;
  expect(n(e1.rx_bytes) - n(eth0?.rx_bytes)).toBeGreaterThan(1000);
  expect(n(e1.tx_bytes) - n(eth0?.tx_bytes)).toBeGreaterThan(1_000_000);
  expect(n(e1.rx_errors)).toBe(0);
  expect(after.linux!.network!.interfaces.map((i) => i.name)).toEqual(['eth0']);
});

test('pod stats: attributes, process count, containers; a pod with its own cgroup parent', async () => {
  const a = await pstats(podAId);
  expect(a.attributes?.id).toBe(podAId);
  expect(a.attributes?.labels).toEqual({ app: 'a' });
  expect(a.attributes?.metadata?.name).toBe('poda');
  // pause + burn (sh) + sleep + httpd, at least
  expect(n(a.linux?.process?.process_count)).toBeGreaterThanOrEqual(4);
  expect(a.linux!.containers.map((c) => c.attributes?.id).sort()).toEqual([burn, mem, web].sort());
  const b = await pstats(podBId);
  expect(n(b.linux?.process?.process_count)).toBeGreaterThanOrEqual(2);
  expect(n(b.linux?.memory?.working_set_bytes)).toBeGreaterThan(0);
  expect(b.linux!.containers.map((c) => c.attributes?.id)).toEqual([idle]);
  // pod B is read from its own cgroup: the parent runc made for it
  expect(fs.existsSync(`/sys/fs/cgroup/memory${parentRoot}/podb`)).toBe(true);
});

test('filters: ids, pod sandbox ids, labels', async () => {
  const r = d.clients.runtime;
  const ids = (s: { stats: ContainerStats__Output[] }): string[] =>
    s.stats.map((x) => x.attributes!.id).sort();
  expect(ids(await call(r, 'ListContainerStats', {}))).toEqual([burn, mem, web, idle].sort());
  expect(ids(await call(r, 'ListContainerStats', { filter: { pod_sandbox_id: podBId } }))).toEqual([idle]);
  expect(ids(await call(r, 'ListContainerStats', { filter: { pod_sandbox_id: podAId } }))).toEqual(
    [burn, mem, web].sort(),
  );
  expect(ids(await call(r, 'ListContainerStats', { filter: { id: mem } }))).toEqual([mem]);
  expect(ids(await call(r, 'ListContainerStats', { filter: { label_selector: { role: 'web' } } }))).toEqual([
    web,
  ]);
  expect(
    ids(
      await call(r, 'ListContainerStats', {
        filter: { pod_sandbox_id: podBId, label_selector: { role: 'web' } },
      }),
    ),
  ).toEqual([]);
  const pods = (s: { stats: PodSandboxStats__Output[] }): string[] =>
    s.stats.map((x) => x.attributes!.id).sort();
  expect(pods(await call(r, 'ListPodSandboxStats', {}))).toEqual([podAId, podBId].sort());
  expect(pods(await call(r, 'ListPodSandboxStats', { filter: { label_selector: { app: 'b' } } }))).toEqual([
    podBId,
  ]);
  expect(pods(await call(r, 'ListPodSandboxStats', { filter: { id: podAId } }))).toEqual([podAId]);
  await expect(call(r, 'ContainerStats', { container_id: 'nope' })).rejects.toMatchObject({ code: 5 });
  await expect(call(r, 'PodSandboxStats', { pod_sandbox_id: '' })).rejects.toMatchObject({ code: 3 });
});

test('metrics: descriptors and values present and consistent with stats', async () => {
  const r = d.clients.runtime;
  const desc = (await call(r, 'ListMetricDescriptors', {})).descriptors;
  const byName = new Map(desc.map((x) => [x.name, x]));
  for (const name of [
    'container_cpu_usage_seconds_total',
    'container_memory_working_set_bytes',
    'container_memory_rss',
    'container_memory_usage_bytes',
    'container_network_receive_bytes_total',
    'container_network_transmit_bytes_total',
    'container_fs_usage_bytes',
  ])
    expect(byName.has(name)).toBe(true);
  const res = await call(r, 'ListPodSandboxMetrics', {});
  const stats = await cstats(burn);
  const pm = res.pod_metrics.find((p) => p.pod_sandbox_id === podAId)!;
  expect(pm).toBeDefined();
  expect(res.pod_metrics.map((p) => p.pod_sandbox_id).sort()).toEqual([podAId, podBId].sort());
  const label = (name: string, values: string[], key: string): string =>
    values[byName.get(name)!.label_keys.indexOf(key)];
  // every metric's label values pair with its descriptor's keys
  for (const m of [...pm.metrics, ...pm.container_metrics.flatMap((c) => c.metrics)]) {
    expect(byName.get(m.name)?.label_keys.length).toBe(m.label_values.length);
    expect(label(m.name, m.label_values, 'pod')).toBe('poda');
    expect(label(m.name, m.label_values, 'namespace')).toBe('stats');
  }
  const rx = pm.metrics.find(
    (m) =>
      m.name === 'container_network_receive_bytes_total' &&
      label(m.name, m.label_values, 'interface') === 'eth0',
  );
  expect(rx?.metric_type).toBe('COUNTER');
  expect(n(rx?.value)).toBeGreaterThan(1000);
  // pod A is summed from its containers (no cgroup of its own); pod B is read from its parent
  expect(label(rx!.name, rx!.label_values, 'id')).toBe('');
  expect(label(rx!.name, rx!.label_values, 'container')).toBe('POD');
  const pmB = res.pod_metrics.find((p) => p.pod_sandbox_id === podBId)!;
  const rxB = pmB.metrics.find((m) => m.name === 'container_network_receive_bytes_total')!;
  expect(label(rxB.name, rxB.label_values, 'id')).toBe(`${parentRoot}/podb`);
  const cm = pm.container_metrics.find((c) => c.container_id === burn)!;
  const get = (name: string): (typeof cm.metrics)[number] | undefined =>
    cm.metrics.find((m) => m.name === name);
  const cpu = get('container_cpu_usage_seconds_total')!;
  expect(label(cpu.name, cpu.label_values, 'container')).toBe('burn');
  expect(label(cpu.name, cpu.label_values, 'name')).toBe(burn);
  expect(label(cpu.name, cpu.label_values, 'cpu')).toBe('total');
  expect(label(cpu.name, cpu.label_values, 'image')).toBe(busybox);
  expect(Math.abs(n(cpu.value) - n(stats.cpu?.usage_core_nano_seconds) / 1e9)).toBeLessThanOrEqual(2);
  const ws = get('container_memory_working_set_bytes')!;
  expect(ws.metric_type).toBe('GAUGE');
  const wsStat = n(stats.memory?.working_set_bytes);
  expect(Math.abs(n(ws.value) - wsStat)).toBeLessThan(Math.max(4 * 1024 * 1024, wsStat * 0.2));
  expect(n(get('container_fs_usage_bytes')?.value)).toBe(n(stats.writable_layer?.used_bytes));
  const memMetrics = pm.container_metrics.find((c) => c.container_id === mem)!.metrics;
  expect(n(memMetrics.find((m) => m.name === 'container_spec_memory_limit_bytes')?.value)).toBe(MEM_LIMIT);
});

test('an exited container has no live stats and leaves the list', async () => {
  await call(d.clients.runtime, 'StopContainer', { container_id: burn, timeout: 0 });
  const s = await cstats(burn);
  expect(s.attributes?.id).toBe(burn);
  expect(s.cpu).toBeNull();
  expect(s.memory).toBeNull();
  const list = await call(d.clients.runtime, 'ListContainerStats', { filter: { pod_sandbox_id: podAId } });
  expect(list.stats.map((x) => x.attributes!.id).sort()).toEqual([mem, web].sort());
});
