// Pod user namespaces (Kubernetes hostUsers: false) end to end: berthd with real runc, conmon and
// CNI. Root inside the pod is uid 100000 on the host, can use its own rootfs and /dev/shm, and has
// no root powers over host files bind-mounted into it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import type { NamespaceOption, PodSandboxConfig } from '../../api/generated';
import { startHarness, type Harness } from '../lab/harness';

let h: Harness;

const HOST_BASE = 100000;
const SIZE = 65536;
const nsOptions = (): NamespaceOption => ({
  userns_options: {
    mode: 'POD',
    uids: [{ container_id: 0, host_id: HOST_BASE, length: SIZE }],
    gids: [{ container_id: 0, host_id: HOST_BASE, length: SIZE }],
  },
});

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthus0', subnet: '10.249.0.0/24', prefix: 'userns' });
});

afterAll(async () => {
  await h?.cleanup();
});

const hostIds = (pid: number): { uid: number[]; gid: number[] } => {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const nums = (k: string): number[] =>
    new RegExp(`^${k}:\\s+(.*)$`, 'm').exec(st)![1].trim().split(/\s+/).map(Number);
  return { uid: nums('Uid'), gid: nums('Gid') };
};

const pidOf = async (id: string): Promise<number> => {
  const s = await call(h.d.clients.runtime, 'ContainerStatus', { container_id: id, verbose: true });
  return (JSON.parse(s.info.info) as { pid: number }).pid;
};

test('Status advertises user namespaces on runc', async () => {
  const s = await call(h.d.clients.runtime, 'Status', {});
  const runc = s.runtime_handlers.find((r) => r.name === 'runc');
  expect(runc?.features?.user_namespaces).toBe(true);
});

test('root in the pod is an unprivileged host uid, can use its own files, not the host', async () => {
  const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-userns-'));
  // the pod's root is "others" to this dir: it may enter, nothing more
  fs.chmodSync(hostDir, 0o711);
  fs.writeFileSync(path.join(hostDir, 'secret'), 'top secret\n', { mode: 0o600 });
  fs.writeFileSync(path.join(hostDir, 'public'), 'hello\n', { mode: 0o644 });
  const pod: PodSandboxConfig = h.podConfig({
    linux: { security_context: { namespace_options: nsOptions() } },
  });
  const podId = await h.runPod(pod);
  let podGone = false;
  try {
    const ctr = (name: string): ReturnType<Harness['ctrConfig']> =>
      h.ctrConfig(name, ['sleep', '3600'], {
        mounts: [
          { container_path: '/host/secret', host_path: path.join(hostDir, 'secret') },
          { container_path: '/host/public', host_path: path.join(hostDir, 'public') },
        ],
        linux: { security_context: { namespace_options: nsOptions() } },
      });
    const a = await h.startCtr(podId, pod, ctr('a'));
    const b = await h.startCtr(podId, pod, ctr('b'));

    // inside: root; the kernel's view of the mapping
    expect((await h.exec(a, ['id'])).out).toMatch(/^uid=0\(root\) gid=0\(root\)/);
    expect((await h.exec(a, ['cat', '/proc/self/uid_map'])).out.trim().split(/\s+/)).toEqual([
      '0',
      String(HOST_BASE),
      String(SIZE),
    ]);
    // outside: the same process belongs to the mapped host uid and gid
    const pid = await pidOf(a);
    expect(hostIds(pid).uid).toEqual([HOST_BASE, HOST_BASE, HOST_BASE, HOST_BASE]);
    expect(hostIds(pid).gid).toEqual([HOST_BASE, HOST_BASE, HOST_BASE, HOST_BASE]);
    // the infra process too
    const infraPid = (
      JSON.parse(
        (await call(h.d.clients.runtime, 'PodSandboxStatus', { pod_sandbox_id: podId, verbose: true })).info
          .info,
      ) as { pid: number }
    ).pid;
    expect(infraPid).toBeGreaterThan(0);
    expect(hostIds(infraPid).uid[0]).toBe(HOST_BASE);

    // the rootfs and /dev/shm are its own
    const w = await h.exec(a, [
      'sh',
      '-c',
      'touch /tmp/x /root/x /etc/x /dev/shm/x && echo w > /bin/newfile && stat -c %u:%g / /tmp/x /bin/newfile',
    ]);
    expect(w).toMatchObject({ code: 0, out: '0:0\n0:0\n0:0\n' });
    // image files keep their image owners inside (root-owned), and are writable by this root
    expect((await h.exec(a, ['stat', '-c', '%u', '/bin/busybox'])).out.trim()).toBe('0');
    // /sys is a sysfs of the pod's own network namespace; the pod files are readable
    expect((await h.exec(a, ['ls', '/sys/class/net'])).out).toMatch(/eth0/);
    expect((await h.exec(a, ['cat', '/etc/hostname'])).out.trim()).toBe(pod.hostname);
    expect((await h.exec(a, ['cat', '/etc/hosts'])).out).toMatch(/10\.249\.0\.\d+/);

    // host files: root in the pod is nobody to them
    const sec = await h.exec(a, ['cat', '/host/secret']);
    expect(sec.code).not.toBe(0);
    expect(sec.err).toMatch(/Permission denied/);
    expect((await h.exec(a, ['stat', '-c', '%u', '/host/secret'])).out.trim()).toBe('65534');
    expect((await h.exec(a, ['cat', '/host/public'])).out).toBe('hello\n');
    const pw = await h.exec(a, ['sh', '-c', 'echo evil > /host/public']);
    expect(pw.code).not.toBe(0);
    expect(fs.readFileSync(path.join(hostDir, 'public'), 'utf8')).toBe('hello\n');
    // and capabilities do not help: chown / chmod of a host file fail
    expect((await h.exec(a, ['chmod', '666', '/host/secret'])).code).not.toBe(0);
    expect(fs.statSync(path.join(hostDir, 'secret')).mode & 0o777).toBe(0o600);

    // both containers share the pod's user (and network, IPC) namespace
    for (const ns of ['user', 'net', 'ipc', 'uts']) {
      const na = (await h.exec(a, ['readlink', `/proc/self/ns/${ns}`])).out.trim();
      const nb = (await h.exec(b, ['readlink', `/proc/self/ns/${ns}`])).out.trim();
      expect(nb).toBe(na);
    }
    expect((await h.exec(a, ['readlink', '/proc/self/ns/user'])).out.trim()).not.toBe(
      fs.readlinkSync('/proc/self/ns/user'),
    );
    // b writes into shm, a reads it
    await h.exec(b, ['sh', '-c', 'echo shared > /dev/shm/from-b']);
    expect((await h.exec(a, ['cat', '/dev/shm/from-b'])).out).toBe('shared\n');
    expect(hostIds(await pidOf(b)).uid[0]).toBe(HOST_BASE);

    // the id-mapped layer copies exist while the pod does...
    const mappedDir = path.join(h.d.root, 'snapshots', 'mapped');
    expect(fs.readdirSync(mappedDir).length).toBeGreaterThan(0);
    await h.removePod(podId);
    podGone = true;
    // ...and removal leaves nothing behind: copies, pins, bundles, pod dirs
    expect(fs.readdirSync(mappedDir)).toEqual([]);
    expect(fs.readdirSync(path.join(h.d.state, 'userns'))).toEqual([]);
    expect(fs.readdirSync(path.join(h.d.state, 'netns'))).toEqual([]);
    expect(fs.readdirSync(path.join(h.d.root, 'snapshots', 'snapshots'))).toEqual([]);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(podId);
  } finally {
    if (!podGone) await h.removePod(podId).catch(() => undefined);
    fs.rmSync(hostDir, { recursive: true, force: true });
  }
});

test('a container must repeat its pod mapping; host IPC with a user namespace is refused', async () => {
  const pod: PodSandboxConfig = h.podConfig({
    linux: { security_context: { namespace_options: nsOptions() } },
  });
  const podId = await h.runPod(pod);
  try {
    const other = nsOptions();
    other.userns_options!.uids = [{ container_id: 0, host_id: 300000, length: SIZE }];
    await expect(
      call(h.d.clients.runtime, 'CreateContainer', {
        pod_sandbox_id: podId,
        config: h.ctrConfig('bad', ['true'], {
          linux: { security_context: { namespace_options: other } },
        }),
        sandbox_config: pod,
      }),
    ).rejects.toMatchObject({ details: expect.stringMatching(/must repeat the pod sandbox mapping/) });
  } finally {
    await h.removePod(podId);
  }
  // (host network with a user namespace works: test/integration/pod-features.test.ts)
  const hostIpc = h.podConfig({
    linux: { security_context: { namespace_options: { ...nsOptions(), ipc: 'NODE' } } },
  });
  await expect(h.runPod(hostIpc)).rejects.toMatchObject({
    details: expect.stringMatching(/cannot use the host's ipc namespace/),
  });
  expect((await call(h.d.clients.runtime, 'ListPodSandbox', {})).items).toHaveLength(0);
});

test('a pod without userns_options stays in the host user namespace, on the shared layers', async () => {
  const pod = h.podConfig();
  const podId = await h.runPod(pod);
  try {
    const id = await h.startCtr(podId, pod, h.ctrConfig('plain', ['sleep', '3600']));
    expect((await h.exec(id, ['readlink', '/proc/self/ns/user'])).out.trim()).toBe(
      fs.readlinkSync('/proc/self/ns/user'),
    );
    expect(hostIds(await pidOf(id)).uid[0]).toBe(0);
    expect(fs.readdirSync(path.join(h.d.root, 'snapshots', 'mapped'))).toEqual([]);
  } finally {
    await h.removePod(podId);
  }
});
