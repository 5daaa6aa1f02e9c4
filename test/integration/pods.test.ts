// Pods and containers end to end: berthd with real runc, conmon, CNI bridge and lab images,
// checked the way a user would check them, from inside the containers.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { status as Status } from '@grpc/grpc-js';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { berthctl, type TestDaemon } from '../lab/berthd';
import { busyboxLayer, pushImage } from '../lab/images';
import type { LabNetwork } from '../lab/cni';
import { startHarness, type Harness } from '../lab/harness';

let h: Harness;
let d: TestDaemon;
let netw: LabNetwork;
let usersImage: string;

const podConfig = (extra?: Partial<PodSandboxConfig>): PodSandboxConfig => h.podConfig(extra);
const ctrConfig = (name: string, command: string[], extra?: Partial<ContainerConfig>): ContainerConfig =>
  h.ctrConfig(name, command, extra);
const runPod = (cfg: PodSandboxConfig): Promise<string> => h.runPod(cfg);
const startCtr = (podId: string, pod: PodSandboxConfig, cfg: ContainerConfig): Promise<string> =>
  h.startCtr(podId, pod, cfg);
const exec = (id: string, cmd: string[], timeout?: number): ReturnType<Harness['exec']> =>
  h.exec(id, cmd, timeout);
const waitExited = (id: string, ms?: number): ReturnType<Harness['waitExited']> => h.waitExited(id, ms);
const removePod = (id: string): Promise<void> => h.removePod(id);

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthit0', subnet: '10.252.0.0/24' });
  ({ d, netw } = h);
  usersImage = (
    await pushImage(h.reg, 'users', 'alice', {
      layers: [busyboxLayer({ users: true })],
      config: { User: 'alice', Env: ['FROM_IMAGE=1', 'OVERRIDE=image'] },
    })
  ).reference;
  await call(d.clients.image, 'PullImage', { image: { image: usersImage } });
});

afterAll(async () => {
  await h?.cleanup();
});

test('NetworkReady is true with a valid CNI config', async () => {
  const s = await call(d.clients.runtime, 'Status', {});
  const net = s.status!.conditions.find((c) => c.type === 'NetworkReady');
  expect(net?.status).toBe(true);
});

test('a container sees its hostname, env, user, groups, pod IP and mounts', async () => {
  const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-mnt-'));
  fs.writeFileSync(path.join(hostDir, 'hello.txt'), 'from the host\n');
  fs.chmodSync(hostDir, 0o777); // the container runs as alice (uid 1000)
  const pod = podConfig({
    hostname: 'myhost',
    dns_config: { servers: ['10.252.0.53'], searches: ['svc.local'], options: ['ndots:2'] },
  });
  const podId = await runPod(pod);
  try {
    const st = await call(d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: podId });
    expect(st.status?.state).toBe('SANDBOX_READY');
    const ip = st.status!.network!.ip;
    expect(ip).toMatch(/^10\.252\.0\.\d+$/);
    const id = await startCtr(
      podId,
      pod,
      ctrConfig('main', ['sleep', '3600'], {
        image: { image: usersImage },
        envs: [
          { key: 'OVERRIDE', value: Buffer.from('cri') },
          { key: 'EXTRA', value: Buffer.from('x y') },
        ],
        mounts: [
          { container_path: '/data-ro', host_path: hostDir, readonly: true },
          { container_path: '/data-rw', host_path: hostDir },
        ],
        linux: { security_context: { supplemental_groups: ['4242'] } },
      }),
    );
    expect((await exec(id, ['hostname'])).out.trim()).toBe('myhost');
    const env = (await exec(id, ['env'])).out;
    expect(env).toContain('FROM_IMAGE=1');
    expect(env).toContain('OVERRIDE=cri');
    expect(env).toContain('EXTRA=x y');
    expect(env).toContain('HOSTNAME=myhost');
    const idOut = (await exec(id, ['id'])).out;
    expect(idOut).toContain('uid=1000(alice)');
    expect(idOut).toContain('gid=1000(alice)');
    expect(idOut).toMatch(/groups=.*50\(staff\)/);
    expect(idOut).toContain('4242');
    expect((await exec(id, ['cat', '/data-ro/hello.txt'])).out).toBe('from the host\n');
    const roWrite = await exec(id, ['sh', '-c', 'echo x > /data-ro/new']);
    expect(roWrite.code).not.toBe(0);
    expect(roWrite.err).toMatch(/Read-only file system/);
    expect((await exec(id, ['sh', '-c', 'echo hi > /data-rw/new && cat /data-rw/new'])).out).toBe('hi\n');
    expect(fs.readFileSync(path.join(hostDir, 'new'), 'utf8')).toBe('hi\n');
    expect((await exec(id, ['ip', 'addr', 'show', 'eth0'])).out).toContain(`inet ${ip}/`);
    const resolv = (await exec(id, ['cat', '/etc/resolv.conf'])).out;
    expect(resolv).toContain('nameserver 10.252.0.53');
    expect(resolv).toContain('search svc.local');
    expect(resolv).toContain('options ndots:2');
    expect((await exec(id, ['cat', '/etc/hosts'])).out).toContain(`${ip}\tmyhost`);
    const shm = (await exec(id, ['sh', '-c', 'grep " /dev/shm " /proc/mounts'])).out;
    expect(shm).toContain('tmpfs');
    const status = await call(d.clients.runtime, 'ContainerStatus', { container_id: id, verbose: true });
    expect(status.status?.state).toBe('CONTAINER_RUNNING');
    expect(status.status?.user?.linux?.uid).toBe('1000');
    expect(BigInt(status.status!.started_at)).toBeGreaterThan(0n);
    expect(JSON.parse(status.info.info).pid).toBeGreaterThan(0);
  } finally {
    await removePod(podId);
    fs.rmSync(hostDir, { recursive: true, force: true });
  }
});

test('two containers of a pod share network and IPC; logs are in the CRI format', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    const a = await startCtr(
      podId,
      pod,
      ctrConfig('a', [
        'sh',
        '-c',
        'echo out-line; echo err-line >&2; mkdir /www; echo pong > /www/index.html; exec httpd -f -p 7070 -h /www',
      ]),
    );
    const b = await startCtr(podId, pod, ctrConfig('b', ['sleep', '3600']));
    // b reaches a's listener over the shared loopback
    let reply = '';
    for (let i = 0; i < 50 && !reply.includes('pong'); i++) {
      reply = (await exec(b, ['wget', '-qO-', 'http://127.0.0.1:7070/'])).out;
      if (!reply.includes('pong')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(reply).toContain('pong');
    // same IPC namespace
    const ipcA = (await exec(a, ['readlink', '/proc/self/ns/ipc'])).out.trim();
    const ipcB = (await exec(b, ['readlink', '/proc/self/ns/ipc'])).out.trim();
    expect(ipcA).toBe(ipcB);
    const netA = (await exec(a, ['readlink', '/proc/self/ns/net'])).out.trim();
    const netB = (await exec(b, ['readlink', '/proc/self/ns/net'])).out.trim();
    expect(netA).toBe(netB);
    const logFile = path.join(pod.log_directory!, 'a', '0.log');
    const text = fs.readFileSync(logFile, 'utf8');
    const line = /^(\S+) (stdout|stderr) ([FP]) (.*)$/;
    const lines = text
      .trim()
      .split('\n')
      .map((l) => line.exec(l));
    expect(lines.every(Boolean)).toBe(true);
    expect(lines.some((m) => m![2] === 'stdout' && m![3] === 'F' && m![4] === 'out-line')).toBe(true);
    expect(lines.some((m) => m![2] === 'stderr' && m![3] === 'F' && m![4] === 'err-line')).toBe(true);
    expect(Number.isNaN(Date.parse(lines[0]![1]))).toBe(false);
    expect(lines[0]![1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+/);
  } finally {
    await removePod(podId);
  }
});

test('exit codes and reasons: Completed, Error, OOMKilled', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    const ok = await startCtr(podId, pod, ctrConfig('ok', ['true']));
    const bad = await startCtr(podId, pod, ctrConfig('bad', ['sh', '-c', 'exit 3']));
    const oom = await startCtr(
      podId,
      pod,
      ctrConfig('oom', ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo $x'], {
        linux: { resources: { memory_limit_in_bytes: String(32 * 1024 * 1024) } },
      }),
    );
    expect(await waitExited(ok)).toMatchObject({ exit_code: 0, reason: 'Completed' });
    expect(await waitExited(bad)).toMatchObject({ exit_code: 3, reason: 'Error' });
    expect(await waitExited(oom, 60_000)).toMatchObject({ exit_code: 137, reason: 'OOMKilled' });
  } finally {
    await removePod(podId);
  }
});

test('ExecSync: output, exit code, timeout', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    const id = await startCtr(podId, pod, ctrConfig('x', ['sleep', '3600']));
    const r = await exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r).toEqual({ out: 'out\n', err: 'err\n', code: 7 });
    const t0 = Date.now();
    await expect(exec(id, ['sleep', '30'], 1)).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(Date.now() - t0).toBeLessThan(10_000);
    // the timed-out command is gone
    const ps = (await exec(id, ['ps'])).out;
    expect(ps).not.toContain('sleep 30');
    // the berthctl view of the same
    const viaCtl = await berthctl(d, ['exec', id, 'sh', '-c', 'echo hello; exit 4']);
    expect(viaCtl.stdout).toBe('hello\n');
    expect(viaCtl.code).toBe(4);
  } finally {
    await removePod(podId);
  }
});

test('capabilities: the default set versus privileged', async () => {
  const capEff = async (id: string): Promise<bigint> => {
    const s = (await exec(id, ['grep', 'CapEff', '/proc/self/status'])).out;
    return BigInt('0x' + s.split(/\s+/)[1]);
  };
  const pod = podConfig({ linux: { security_context: { privileged: true } } });
  const podId = await runPod(pod);
  try {
    const def = await startCtr(podId, pod, ctrConfig('def', ['sleep', '3600']));
    const priv = await startCtr(
      podId,
      pod,
      ctrConfig('priv', ['sleep', '3600'], { linux: { security_context: { privileged: true } } }),
    );
    // Docker's default set: 14 capabilities, no CAP_SYS_ADMIN (21)
    const d0 = await capEff(def);
    expect(
      d0
        .toString(2)
        .split('')
        .filter((c) => c === '1').length,
    ).toBe(14);
    expect(d0 & (1n << 21n)).toBe(0n);
    const p0 = await capEff(priv);
    expect(p0 & (1n << 21n)).not.toBe(0n);
    // privileged sees host devices, the default one does not
    expect((await exec(priv, ['ls', '/dev'])).out.split('\n').length).toBeGreaterThan(
      (await exec(def, ['ls', '/dev'])).out.split('\n').length,
    );
  } finally {
    await removePod(podId);
  }
});

test('hostPort is reachable on 127.0.0.1', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const pod = podConfig({ port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: port }] });
  const podId = await runPod(pod);
  try {
    await startCtr(
      podId,
      pod,
      ctrConfig('web', [
        'sh',
        '-c',
        'mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www',
      ]),
    );
    let body = '';
    for (let i = 0; i < 50 && !body.includes('served'); i++) {
      body = await fetch(`http://127.0.0.1:${port}/`)
        .then((r) => r.text())
        .catch(() => '');
      if (!body.includes('served')) await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toBe('served\n');
  } finally {
    await removePod(podId);
  }
});

test('a second RunPodSandbox with the same metadata is ALREADY_EXISTS; bad input is INVALID_ARGUMENT', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    await expect(runPod(pod)).rejects.toMatchObject({ code: Status.ALREADY_EXISTS });
    await expect(
      runPod({ ...podConfig(), metadata: { name: 'x;y', namespace: 'it', uid: 'u', attempt: 0 } }),
    ).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(runPod({ ...podConfig(), log_directory: 'relative' })).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
    });
    await expect(
      call(d.clients.runtime, 'CreateContainer', {
        pod_sandbox_id: podId,
        config: ctrConfig('c', ['true'], { image: { image: `${h.reg.host}/not/pulled:1` } }),
      }),
    ).rejects.toMatchObject({ code: Status.NOT_FOUND });
    await expect(
      call(d.clients.runtime, 'CreateContainer', {
        pod_sandbox_id: podId,
        config: ctrConfig('c', ['true'], {
          mounts: [{ container_path: '/x', host_path: '/nonexistent/path' }],
        }),
      }),
    ).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    await expect(
      call(d.clients.runtime, 'ContainerStatus', { container_id: 'f'.repeat(64) }),
    ).rejects.toMatchObject({
      code: Status.NOT_FOUND,
    });
    await expect(
      call(d.clients.runtime, 'CreateContainer', {
        pod_sandbox_id: 'nope',
        config: ctrConfig('c', ['true']),
      }),
    ).rejects.toMatchObject({ code: Status.NOT_FOUND });
  } finally {
    await removePod(podId);
  }
  // removing twice is fine
  await call(d.clients.runtime, 'RemovePodSandbox', { pod_sandbox_id: podId });
  // stopping a container that never existed succeeds, as kubelet's retried stops expect
  await call(d.clients.runtime, 'StopContainer', { container_id: 'f'.repeat(64), timeout: 0 });
});

test('stop honours the grace period, then kills', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    const polite = await startCtr(podId, pod, ctrConfig('polite', ['sleep', '3600']));
    const stubborn = await startCtr(
      podId,
      pod,
      ctrConfig('stubborn', ['sh', '-c', "trap '' TERM; while true; do sleep 1; done"]),
    );
    let t0 = Date.now();
    await call(d.clients.runtime, 'StopContainer', { container_id: polite, timeout: 10 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect((await waitExited(polite)).exit_code).toBe(143);
    t0 = Date.now();
    await call(d.clients.runtime, 'StopContainer', { container_id: stubborn, timeout: 2 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect((await waitExited(stubborn)).exit_code).toBe(137);
    // lists filter by state
    const exited = await call(d.clients.runtime, 'ListContainers', {
      filter: { state: { state: 'CONTAINER_EXITED' }, pod_sandbox_id: podId },
    });
    expect(exited.containers.map((c) => c.id).sort()).toEqual([polite, stubborn].sort());
  } finally {
    await removePod(podId);
  }
});

test('containers keep running across kill -9 of berthd; exits meanwhile are recorded', async () => {
  const pod = podConfig();
  const podId = await runPod(pod);
  try {
    const runner = await startCtr(podId, pod, ctrConfig('runner', ['sleep', '3600']));
    const quitter = await startCtr(podId, pod, ctrConfig('quitter', ['sh', '-c', 'sleep 2; exit 5']));
    await d.kill9();
    await new Promise((r) => setTimeout(r, 3000));
    await d.restart();
    const s1 = await call(d.clients.runtime, 'ContainerStatus', { container_id: runner });
    expect(s1.status?.state).toBe('CONTAINER_RUNNING');
    expect((await exec(runner, ['echo', 'alive'])).out).toBe('alive\n');
    const s2 = await waitExited(quitter);
    expect(s2.exit_code).toBe(5);
    const p = await call(d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: podId });
    expect(p.status?.state).toBe('SANDBOX_READY');
  } finally {
    await removePod(podId);
  }
});

test('a create/remove loop leaks no mounts, netns, IPs or cgroups', async () => {
  // every mount of this daemon but the netns dir's own bind mount (made once, kept on purpose)
  const mounts = (): string[] =>
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((m) => (m.startsWith(d.root) || m.startsWith(d.state)) && m !== path.join(d.state, 'netns'));
  const before = mounts().length;
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    const pod = podConfig();
    const podId = await runPod(pod);
    const id = await startCtr(podId, pod, ctrConfig('c', ['sleep', '3600']));
    made.push(podId, id);
    // while it runs, its cgroup exists (so the check below can fail)
    expect(fs.existsSync(`/sys/fs/cgroup/memory/berth/berth-${id}`)).toBe(true);
    await call(d.clients.runtime, 'StopContainer', { container_id: id, timeout: 0 });
    await call(d.clients.runtime, 'RemoveContainer', { container_id: id });
    await removePod(podId);
  }
  expect(mounts().length).toBe(before);
  expect(netw.allocated()).toEqual([]);
  const netnsDir = path.join(d.state, 'netns');
  expect(fs.existsSync(netnsDir) ? fs.readdirSync(netnsDir) : []).toEqual([]);
  // other daemons (other test files, berth-up) share /sys/fs/cgroup/*/berth: check ours only
  const cgroups = made.flatMap((id) =>
    ['memory', 'cpu', 'pids']
      .map((c) => `/sys/fs/cgroup/${c}/berth/berth-${id}`)
      .filter((p) => fs.existsSync(p)),
  );
  expect(cgroups).toEqual([]);
  const runcList = execFileSync('runc', ['--root', path.join(d.state, 'runtime', 'runc'), 'list', '-q'], {
    encoding: 'utf8',
  });
  expect(runcList.trim()).toBe('');
});
