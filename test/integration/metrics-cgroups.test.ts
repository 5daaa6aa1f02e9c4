// Operations against a real berthd: the Prometheus endpoint (counters move after a pull, a pod, an
// exec and failed calls), conmon's cgroup (the pod's, not berthd's; the container survives kill -9
// of berthd and is seen after restart), and the refusal of cgroup_driver = "systemd" on a host
// without systemd as PID 1.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { call } from '../../api/client';
import { startBerthd } from '../lab/berthd';
import { removeCgroupTree } from '../lab/containerd';
import { startHarness, type Harness } from '../lab/harness';
import { pushImage } from '../lab/images';
import { makeTar } from '../lab/tar';
import { cgroupHierarchies } from '../../internal/runtime/conmon-cgroup';

let h: Harness;
const CG_ROOT = `/berthmt-${process.pid}`;

beforeAll(async () => {
  h = await startHarness({
    bridge: 'berthmt0',
    subnet: '10.238.0.0/24',
    prefix: 'mt',
    config: { metrics_address: '127.0.0.1:0' },
  });
});

afterAll(async () => {
  await h?.cleanup();
  for (const f of removeCgroupTree(CG_ROOT)) console.warn(f);
});

function metricsUrl(): string {
  const m = /http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(h.d.output());
  if (!m) throw new Error(`berthd did not log its metrics address:\n${h.d.output()}`);
  return m[0];
}

function scrape(): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(metricsUrl(), (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}`)),
        );
      })
      .on('error', reject);
  });
}

/** One series' value (0 when absent). */
function value(text: string, series: string): number {
  for (const line of text.split('\n'))
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return 0;
}

/** Sum of all samples of a metric whose labels contain every `label="v"` given. */
function sum(text: string, name: string, ...labels: string[]): number {
  let s = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels.every((l) => line.includes(l))) s += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return s;
}

/** The cgroup of `pid` per hierarchy ("memory" → path, "0" → cgroup2 path, "name=systemd" → path). */
function procCgroups(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [id, ctrls, p] = line.split(':') as [string, string, string];
    if (ctrls === '') m.set(id, p);
    for (const c of ctrls.split(',').filter(Boolean)) m.set(c, p);
  }
  return m;
}

/** Writes `pid` into the cgroups `where` names (as procCgroups reads them), in every hierarchy. */
function moveInto(pid: number, where: Map<string, string>): void {
  for (const hier of cgroupHierarchies(fs.readFileSync('/proc/self/mountinfo', 'utf8'))) {
    const p = where.get(hier.version === 2 ? '0' : (hier.controllers[0] as string));
    if (p !== undefined) fs.writeFileSync(path.join(hier.mount, p, 'cgroup.procs'), String(pid));
  }
}

function conmonPidOf(id: string): number {
  return Number(fs.readFileSync(path.join(h.d.state, 'rt', 'runc', 'pids', `${id}.conmon`), 'utf8').trim());
}

const alive = (pid: number): boolean => fs.existsSync(`/proc/${pid}`);

test('a scrape after a pull, a pod, an exec and failed calls shows the counters moved', async () => {
  const before = await scrape();
  const img = await pushImage(h.reg, 'metrics/data', 'v1', {
    layers: [await makeTar([{ path: 'data.bin', content: Buffer.alloc(300_000, 7) }])],
  });
  await call(h.d.clients.image, 'PullImage', { image: { image: img.reference } });
  await expect(
    call(h.d.clients.image, 'PullImage', { image: { image: `${h.reg.host}/metrics/nosuch:v1` } }),
  ).rejects.toMatchObject({ code: 5 });
  await expect(
    call(h.d.clients.runtime, 'ContainerStatus', { container_id: 'nosuchcontainer' }),
  ).rejects.toMatchObject({ code: 5 });
  const pod = h.podConfig();
  const podId = await h.runPod(pod);
  const ctr = await h.startCtr(podId, pod, h.ctrConfig('sleeper', ['sleep', '3600']));
  expect((await h.exec(ctr, ['true'])).code).toBe(0);
  await expect(h.exec(ctr, ['sleep', '30'], 1)).rejects.toMatchObject({ code: 4 });

  const after = await scrape();
  const moved = (series: string): number => value(after, series) - value(before, series);
  // RPCs by code, with latency
  expect(moved('berth_rpc_requests_total{rpc="PullImage",code="OK"}')).toBe(1);
  expect(moved('berth_rpc_requests_total{rpc="PullImage",code="NOT_FOUND"}')).toBe(1);
  expect(moved('berth_rpc_requests_total{rpc="ContainerStatus",code="NOT_FOUND"}')).toBe(1);
  expect(moved('berth_rpc_requests_total{rpc="RunPodSandbox",code="OK"}')).toBe(1);
  expect(moved('berth_rpc_requests_total{rpc="ExecSync",code="DEADLINE_EXCEEDED"}')).toBe(1);
  expect(moved('berth_rpc_duration_seconds_count{rpc="RunPodSandbox"}')).toBe(1);
  // pulls: the new image and the pause image (first pod), their bytes; the missing one by reason
  expect(moved('berth_image_pulls_total')).toBe(2);
  expect(moved('berth_image_pull_bytes_total')).toBeGreaterThan(0);
  expect(moved('berth_image_pull_duration_seconds_count')).toBe(2);
  expect(moved('berth_image_pull_failures_total{reason="NOT_FOUND"}')).toBe(1);
  expect(moved('berth_image_unpack_bytes_total')).toBeGreaterThanOrEqual(300_000);
  // CNI ADD for the pod (bridge, then the lab's other plugins)
  expect(sum(after, 'berth_cni_plugin_duration_seconds_count', 'op="ADD"')).toBeGreaterThan(
    sum(before, 'berth_cni_plugin_duration_seconds_count', 'op="ADD"'),
  );
  expect(moved('berth_cni_operation_duration_seconds_count{op="ADD"}')).toBe(1);
  // exec-sync and its timeout
  expect(moved('berth_exec_sync_total')).toBe(2);
  expect(moved('berth_exec_sync_timeouts_total')).toBe(1);
  // state gauges
  expect(value(after, 'berth_pods{state="ready"}')).toBe(1);
  expect(value(after, 'berth_containers{state="running"}')).toBe(1);
  expect(value(after, 'berth_conmon_processes')).toBe(2); // the infra container's and sleeper's
  // event loop and process
  expect(after).toMatch(/^berth_event_loop_delay_seconds\{quantile="0.99"\} [\d.e-]+$/m);
  expect(after).toMatch(/^berth_event_loop_utilization_ratio [\d.e-]+$/m);
  expect(value(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  expect(value(after, 'process_open_fds')).toBeGreaterThan(0);
  expect(value(after, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

  await h.removePod(podId);
  const gone = await scrape();
  expect(sum(gone, 'berth_cni_plugin_duration_seconds_count', 'op="DEL"')).toBeGreaterThan(
    sum(after, 'berth_cni_plugin_duration_seconds_count', 'op="DEL"'),
  );
  expect(value(gone, 'berth_cni_operation_duration_seconds_count{op="DEL"}')).toBeGreaterThan(
    value(after, 'berth_cni_operation_duration_seconds_count{op="DEL"}'),
  );
  expect(value(gone, 'berth_pods{state="ready"}')).toBe(0);
  expect(value(gone, 'berth_conmon_processes')).toBe(0);
});

test("conmon is in the pod's cgroup; kill -9 of berthd leaves the container running, seen after restart", async () => {
  const parent = `${CG_ROOT}/podA`;
  const pod = h.podConfig({ linux: { cgroup_parent: parent } });
  const podId = await h.runPod(pod);
  const ctr = await h.startCtr(podId, pod, h.ctrConfig('sleeper', ['sleep', '3600']));
  const berthdCg = procCgroups(h.d.proc.pid!);

  for (const id of [podId, ctr]) {
    const conmon = conmonPidOf(id);
    const cg = procCgroups(conmon);
    const want = `${parent}/berth-conmon-${id}`;
    // every hierarchy: the v1 controllers, the named systemd one and cgroup2
    for (const k of ['memory', 'pids', 'cpu', 'cpuset', 'name=systemd', '0']) {
      if (berthdCg.has(k)) expect([k, cg.get(k)]).toEqual([k, want]);
    }
  }
  const status = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: ctr, verbose: true });
  const ctrPid = (JSON.parse(status.info.info ?? '{}') as { pid?: number }).pid;
  const conmon = conmonPidOf(ctr);
  // as a berthd that never moved it would have left it: back in berthd's own cgroups; the next
  // start moves it again
  moveInto(conmon, berthdCg);
  expect(procCgroups(conmon).get('memory')).toBe(berthdCg.get('memory'));

  await h.d.kill9();
  expect(alive(conmon)).toBe(true);
  if (ctrPid) expect(alive(ctrPid)).toBe(true);
  await h.d.restart();
  const s = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: ctr });
  expect(s.status?.state).toBe('CONTAINER_RUNNING');
  expect((await h.exec(ctr, ['echo', 'still here'])).out).toBe('still here\n');
  expect(conmonPidOf(ctr)).toBe(conmon);
  expect(procCgroups(conmon).get('memory')).toBe(`${parent}/berth-conmon-${ctr}`);

  await h.removePod(podId);
  // the conmon leaves went with their containers: the pod cgroup can be removed by its owner
  for (const id of [podId, ctr])
    expect(fs.existsSync(`/sys/fs/cgroup/memory${parent}/berth-conmon-${id}`)).toBe(false);
});

test('a create that runc refuses leaves no conmon and no conmon cgroup (placed while runc create ran)', async () => {
  const parent = `${CG_ROOT}/podC`;
  const pod = h.podConfig({ linux: { cgroup_parent: parent } });
  const podId = await h.runPod(pod);
  const leaves = (): string[] =>
    cgroupHierarchies(fs.readFileSync('/proc/self/mountinfo', 'utf8')).flatMap((x) => {
      const dir = path.join(x.mount, parent);
      return fs.existsSync(dir)
        ? fs.readdirSync(dir).filter((n) => n.startsWith('berth-conmon-') && !n.endsWith(podId))
        : [];
    });
  const conmons = (): number[] =>
    fs
      .readdirSync('/proc')
      .filter((p) => {
        try {
          const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
          return cmd.startsWith('/usr/bin/conmon') && cmd.includes(h.d.state);
        } catch {
          return false;
        }
      })
      .map(Number);
  const before = fs.readdirSync(path.join(h.d.state, 'rt', 'runc', 'pids')).length;
  const monitors = conmons();
  // runc create itself fails (the command is looked up when the container is created)
  await expect(
    call(h.d.clients.runtime, 'CreateContainer', {
      pod_sandbox_id: podId,
      config: h.ctrConfig('nope', ['/no/such/binary']),
      sandbox_config: pod,
    }),
  ).rejects.toMatchObject({ code: 3 }); // INVALID_ARGUMENT: the caller's command
  expect(leaves()).toEqual([]);
  expect(fs.readdirSync(path.join(h.d.state, 'rt', 'runc', 'pids')).length).toBe(before);
  expect(conmons()).toEqual(monitors); // the infra container's only
  await h.removePod(podId);
});

test("killing everything in berthd's cgroup (systemd KillMode=control-group) spares conmon and the container", async () => {
  // berthd as a systemd service would run: in a cgroup of its own in the hierarchies systemd
  // tracks (name=systemd on this hybrid host, cgroup2) and in memory
  const svc = `${CG_ROOT}/berthd.service`;
  const hiers = cgroupHierarchies(fs.readFileSync('/proc/self/mountinfo', 'utf8')).filter(
    (x) => x.version === 2 || x.controllers.includes('name=systemd') || x.controllers.includes('memory'),
  );
  for (const x of hiers) {
    fs.mkdirSync(path.join(x.mount, svc), { recursive: true });
    fs.writeFileSync(path.join(x.mount, svc, 'cgroup.procs'), String(h.d.proc.pid));
  }
  const pod = h.podConfig({ linux: { cgroup_parent: `${CG_ROOT}/podB` } });
  const podId = await h.runPod(pod);
  const ctr = await h.startCtr(podId, pod, h.ctrConfig('sleeper', ['sleep', '3600']));
  const conmon = conmonPidOf(ctr);
  const status = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: ctr, verbose: true });
  const ctrPid = (JSON.parse(status.info.info ?? '{}') as { pid: number }).pid;

  // what systemd does on stop with KillMode=control-group: every process of the unit's cgroup
  const tracked = hiers.find((x) => x.version === 1 && x.controllers.includes('name=systemd')) ?? hiers[0]!;
  const procs = fs
    .readFileSync(path.join(tracked.mount, svc, 'cgroup.procs'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(Number);
  expect(procs).toContain(h.d.proc.pid);
  expect(procs).not.toContain(conmon);
  for (const p of procs) process.kill(p, 'SIGKILL');
  await h.d.exited();
  expect(alive(conmon)).toBe(true);
  expect(alive(ctrPid)).toBe(true);

  await h.d.restart();
  const s = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: ctr });
  expect(s.status?.state).toBe('CONTAINER_RUNNING');
  await h.removePod(podId);
});

/** TCP sockets in LISTEN held by process `pid`. */
function tcpListeners(pid: number): number {
  const inodes = new Set(
    fs
      .readdirSync(`/proc/${pid}/fd`)
      .map((f) => /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${f}`))?.[1])
      .filter(Boolean),
  );
  const table = fs.readFileSync('/proc/net/tcp', 'utf8') + fs.readFileSync('/proc/net/tcp6', 'utf8');
  return table
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] === '0A' && inodes.has(f[9])).length;
}

test('no metrics listener unless metrics_address is set', async () => {
  const d = await startBerthd({});
  try {
    expect(d.output()).not.toContain('serving metrics');
    // the same daemon with metrics on (the harness's) has exactly one TCP listener more
    expect(tcpListeners(h.d.proc.pid!) - tcpListeners(d.proc.pid!)).toBe(1);
  } finally {
    await d.cleanup();
  }
});

const pid1 = fs.readFileSync('/proc/1/comm', 'utf8').trim();
const systemdInit = pid1 === 'systemd' && fs.existsSync('/run/systemd/system');

(systemdInit ? test.skip : test)(
  'cgroup_driver = "systemd" is refused at start on a host without systemd as PID 1',
  async () => {
    await expect(startBerthd({ runtime: { cgroup_driver: 'systemd' } })).rejects.toThrow(
      `config: runtime.cgroup_driver: "systemd" needs systemd as PID 1, but PID 1 is "${pid1}"`,
    );
  },
);
