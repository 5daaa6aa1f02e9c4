// More pod and container behaviour: host network, shared PID namespace, read-only rootfs,
// seccomp, log reopen, 20 pods at once, a crash in the middle of CreateContainer, and berthctl
// driving the whole lifecycle from crictl-format config files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { berthctl, type TestDaemon } from '../lab/berthd';
import type { LabNetwork } from '../lab/cni';
import { startHarness, type Harness } from '../lab/harness';

let h: Harness;
let d: TestDaemon;
let netw: LabNetwork;
let logDir: string;
let busybox: string;

const podConfig = (extra?: Partial<PodSandboxConfig>): PodSandboxConfig => h.podConfig(extra);
const ctrConfig = (name: string, command: string[], extra?: Partial<ContainerConfig>): ContainerConfig =>
  h.ctrConfig(name, command, extra);
const runPod = (cfg: PodSandboxConfig): Promise<string> => h.runPod(cfg);
const startCtr = (podId: string, pod: PodSandboxConfig, cfg: ContainerConfig): Promise<string> =>
  h.startCtr(podId, pod, cfg);
const exec = (id: string, cmd: string[]): ReturnType<Harness['exec']> => h.exec(id, cmd);
const removePod = (id: string): Promise<void> => h.removePod(id);

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthit1', subnet: '10.247.0.0/24', prefix: 'more' });
  ({ d, netw, logDir, busybox } = h);
});

afterAll(async () => {
  await h?.cleanup();
});

test('a hostNetwork pod uses the host network namespace and no CNI IP', async () => {
  const pod = podConfig({ linux: { security_context: { namespace_options: { network: 'NODE' } } } });
  const podId = await runPod(pod);
  try {
    const st = await call(d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: podId });
    expect(st.status?.network?.ip).toBe('');
    expect(st.status?.linux?.namespaces?.options?.network).toBe('NODE');
    const id = await startCtr(podId, pod, ctrConfig('h', ['sleep', '3600']));
    const inside = (await exec(id, ['readlink', '/proc/self/ns/net'])).out.trim();
    expect(inside).toBe(fs.readlinkSync('/proc/self/ns/net'));
    expect(netw.allocated()).toEqual([]);
  } finally {
    await removePod(podId);
  }
});

test('pid namespace POD is shared by the pod; CONTAINER is private', async () => {
  const shared = podConfig({ linux: { security_context: { namespace_options: { pid: 'POD' } } } });
  const podId = await runPod(shared);
  try {
    const opts = { linux: { security_context: { namespace_options: { pid: 'POD' as const } } } };
    const a = await startCtr(podId, shared, ctrConfig('a', ['sleep', '3600'], opts));
    const b = await startCtr(podId, shared, ctrConfig('b', ['sleep', '3601'], opts));
    const ps = (await exec(b, ['ps', '-o', 'args'])).out;
    expect(ps).toContain('sleep 3600');
    expect(ps).toContain('sleep 3601');
    expect((await exec(a, ['readlink', '/proc/self/ns/pid'])).out).toBe(
      (await exec(b, ['readlink', '/proc/self/ns/pid'])).out,
    );
  } finally {
    await removePod(podId);
  }
  // kubelet's default: each container its own pid namespace
  const own = { linux: { security_context: { namespace_options: { pid: 'CONTAINER' as const } } } };
  const priv = podConfig(own);
  const podId2 = await runPod(priv);
  try {
    const c = await startCtr(podId2, priv, ctrConfig('c', ['sleep', '3600'], own));
    const ps = (await exec(c, ['ps', '-o', 'pid,args'])).out;
    expect(ps).toMatch(/^\s*1\s+sleep 3600/m);
    expect(ps).not.toContain('/pause');
  } finally {
    await removePod(podId2);
  }
});

test('read-only rootfs, RuntimeDefault seccomp, no_new_privs, sysctls', async () => {
  const pod = podConfig({ linux: { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '80' } } });
  const podId = await runPod(pod);
  try {
    const id = await startCtr(
      podId,
      pod,
      ctrConfig('ro', ['sleep', '3600'], {
        linux: {
          security_context: {
            readonly_rootfs: true,
            no_new_privs: true,
            seccomp: { profile_type: 'RuntimeDefault' },
          },
        },
      }),
    );
    const w = await exec(id, ['touch', '/newfile']);
    expect(w.code).not.toBe(0);
    expect(w.err).toMatch(/Read-only file system/);
    const status = (await exec(id, ['cat', '/proc/self/status'])).out;
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect((await exec(id, ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).out.trim()).toBe('80');
    // the default profile refuses what Docker's refuses (unshare of a user namespace needs CAP_SYS_ADMIN)
    expect((await exec(id, ['unshare', '-U', 'true'])).code).not.toBe(0);
  } finally {
    await removePod(podId);
  }
});

test('ReopenContainerLog: after rotation new lines go to a new file', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    const id = await startCtr(
      podId,
      pod,
      ctrConfig('logger', ['sh', '-c', 'i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done']),
    );
    const file = path.join(pod.log_directory!, 'logger', '0.log');
    await new Promise((r) => setTimeout(r, 500));
    fs.renameSync(file, `${file}.1`);
    await call(d.clients.runtime, 'ReopenContainerLog', { container_id: id });
    await new Promise((r) => setTimeout(r, 500));
    expect(fs.existsSync(file)).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/ stdout F line\d+\n/);
    const old = fs.readFileSync(`${file}.1`, 'utf8').trim().split('\n');
    const fresh = fs.readFileSync(file, 'utf8').trim().split('\n');
    const n = (l: string): number => Number(/line(\d+)$/.exec(l)![1]);
    expect(n(fresh[0])).toBeGreaterThan(n(old[old.length - 1]));
    await call(d.clients.runtime, 'StopContainer', { container_id: id, timeout: 0 });
    await expect(call(d.clients.runtime, 'ReopenContainerLog', { container_id: id })).rejects.toMatchObject({
      code: Status.FAILED_PRECONDITION,
    });
  } finally {
    await removePod(podId);
  }
});

test('20 pods created in parallel all succeed, with distinct IPs', async () => {
  const pods = Array.from({ length: 20 }, () => podConfig());
  const ids = await Promise.all(pods.map((p) => runPod(p)));
  try {
    const ctrs = await Promise.all(
      ids.map((id, i) => startCtr(id, pods[i], ctrConfig('c', ['sleep', '3600']))),
    );
    expect(new Set(ctrs).size).toBe(20);
    const ips = await Promise.all(
      ids.map(
        async (id) =>
          (await call(d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: id })).status!.network!.ip,
      ),
    );
    expect(new Set(ips).size).toBe(20);
    const running = await call(d.clients.runtime, 'ListContainers', {
      filter: { state: { state: 'CONTAINER_RUNNING' } },
    });
    expect(running.containers.filter((c) => ctrs.includes(c.id))).toHaveLength(20);
  } finally {
    await Promise.all(ids.map((id) => removePod(id)));
  }
  expect(netw.allocated()).toEqual([]);
});

test('kill -9 in the middle of CreateContainer leaves no ghost after restart', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    const snapshots = (): string[] => fs.readdirSync(path.join(d.root, 'snapshots', 'snapshots'));
    const before = snapshots().length;
    // fire a create and kill the daemon right after the request went out
    const pending = call(d.clients.runtime, 'CreateContainer', {
      pod_sandbox_id: podId,
      config: ctrConfig('ghost', ['sleep', '3600']),
    }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 15));
    await d.kill9();
    await pending;
    await d.restart();
    const list = await call(d.clients.runtime, 'ListContainers', { filter: { pod_sandbox_id: podId } });
    // either the create completed before the kill (a whole container) or nothing is left
    for (const c of list.containers) expect(c.state).toBe('CONTAINER_CREATED');
    if (list.containers.length === 0) expect(snapshots().length).toBe(before);
    const recs = fs.readdirSync(path.join(d.root, 'containers')).filter((n) => n.endsWith('.json'));
    expect(recs.length).toBe(list.containers.length);
    // the name is free again (or held by the whole container)
    if (list.containers.length === 0) await startCtr(podId, pod, ctrConfig('ghost', ['sleep', '3600']));
  } finally {
    await removePod(podId);
  }
});

test('berthctl runs the README flow from crictl-format files', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berthctl-'));
  try {
    const pod = JSON.parse(fs.readFileSync(path.join(__dirname, '../../deploy/examples/pod.json'), 'utf8'));
    pod.metadata.uid = `ctl-${process.pid}`;
    pod.log_directory = path.join(logDir, 'ctl');
    const ctr = JSON.parse(
      fs.readFileSync(path.join(__dirname, '../../deploy/examples/container.json'), 'utf8'),
    );
    ctr.image.image = busybox;
    fs.writeFileSync(path.join(dir, 'pod.json'), JSON.stringify(pod));
    fs.writeFileSync(path.join(dir, 'container.json'), JSON.stringify(ctr));
    const runp = await berthctl(d, ['runp', path.join(dir, 'pod.json')]);
    expect(runp.stderr).toBe('');
    const podId = runp.stdout.trim();
    expect(podId).toMatch(/^[0-9a-f]{64}$/);
    const pods = await berthctl(d, ['pods']);
    expect(pods.stdout).toContain(pod.metadata.name);
    const create = await berthctl(d, [
      'create',
      podId,
      path.join(dir, 'container.json'),
      path.join(dir, 'pod.json'),
    ]);
    expect(create.stderr).toBe('');
    const id = create.stdout.trim();
    expect((await berthctl(d, ['start', id])).code).toBe(0);
    const ps = await berthctl(d, ['ps']);
    expect(ps.stdout).toContain(id.slice(0, 13));
    expect(ps.stdout).toContain('Running');
    const ex = await berthctl(d, ['exec', id, 'sh', '-c', 'echo $GREETING from $(hostname)']);
    expect(ex.stdout).toBe(`hello from ${pod.hostname}\n`);
    await new Promise((r) => setTimeout(r, 1200));
    const logs = await berthctl(d, ['logs', '--tail', '1', id]);
    expect(logs.stdout).toBe('hello\n');
    expect((await berthctl(d, ['inspect', id])).stdout).toContain('"state": "CONTAINER_RUNNING"');
    expect((await berthctl(d, ['stop', id])).code).toBe(0);
    expect((await berthctl(d, ['rm', id])).code).toBe(0);
    expect((await berthctl(d, ['stopp', podId])).code).toBe(0);
    expect((await berthctl(d, ['rmp', podId])).code).toBe(0);
    expect((await berthctl(d, ['pods', '-q'])).stdout).not.toContain(podId);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
