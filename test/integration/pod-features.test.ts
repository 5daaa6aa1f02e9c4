// Issue #11 items 3, 7 and 8 end to end: RuntimeStatus features that match what really happens
// (Mount.mount_options applied by runc and seen inside the container, refused ones named; a
// host-network pod with a user namespace; recursive read-only where advertised), an in-place pod
// resize while its containers are resized, and CheckpointPod/RestorePod's answers on a host where
// CRIU cannot work. Real berthd, runc, conmon, registry and CNI bridge.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import type {
  ContainerConfig__Output,
  Mount,
  PodSandboxConfig,
  PodSandboxConfig__Output,
} from '../../api/generated';
import { buildManifest } from '../../internal/container/pod-checkpoint';
import { writePodCheckpointFiles } from '../../internal/container/pod-checkpoint-io';
import { criuUnavailable } from '../../internal/runtime/features';
import { startHarness, type Harness } from '../lab/harness';

let h: Harness;
let hostDir: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthck0', subnet: '10.228.0.0/24', prefix: 'feat' });
  hostDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-feat-'));
  fs.writeFileSync(path.join(hostDir, 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
}, 120_000);

afterAll(async () => {
  await h?.cleanup();
  if (hostDir) fs.rmSync(hostDir, { recursive: true, force: true });
});

const bindMount = (container_path: string, o: Partial<Mount> = {}): Mount => ({
  container_path,
  host_path: hostDir,
  ...o,
});

/** The mount options (per-mount field of /proc/self/mountinfo) of the mount at `target`. */
async function mountOpts(id: string, target: string): Promise<string[]> {
  const info = (await h.exec(id, ['cat', '/proc/self/mountinfo'])).out;
  const line = info.split('\n').find((l) => l.split(' ')[4] === target);
  if (!line) throw new Error(`no mount at ${target} in:\n${info}`);
  return line.split(' ')[5]!.split(',');
}

async function withPod<T>(fn: (pod: string, cfg: PodSandboxConfig) => Promise<T>): Promise<T> {
  const cfg = h.podConfig();
  const pod = await h.runPod(cfg);
  try {
    return await fn(pod, cfg);
  } finally {
    await h.removePod(pod);
  }
}

describe('RuntimeStatus features match behaviour', () => {
  test('advertises mount_options; handlers say rro as runc features does', async () => {
    const st = await call(h.d.clients.runtime, 'Status', {});
    expect(st.features).toMatchObject({
      supplemental_groups_policy: true,
      mount_options: true,
    });
    const runcRro = (
      JSON.parse(execFileSync('runc', ['features'], { encoding: 'utf8' })) as { mountOptions: string[] }
    ).mountOptions.includes('rro');
    const def = st.runtime_handlers.find((r) => r.name === '');
    expect(def?.features?.recursive_read_only_mounts).toBe(runcRro);
  });

  test('mount_options noexec, nosuid, nodev, ro: applied by runc, seen in mountinfo, exec really refused', async () => {
    await withPod(async (pod, cfg) => {
      const id = await h.startCtr(
        pod,
        cfg,
        h.ctrConfig('opts', ['sleep', '3600'], {
          mounts: [
            bindMount('/noexec', { mount_options: ['noexec', 'nosuid', 'nodev'] }),
            bindMount('/plain'),
            bindMount('/ro', { mount_options: ['ro', 'noatime'] }),
          ],
        }),
      );
      const noexec = await mountOpts(id, '/noexec');
      expect(noexec).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noexec']));
      expect(await mountOpts(id, '/plain')).not.toContain('noexec');
      expect(await mountOpts(id, '/ro')).toEqual(expect.arrayContaining(['ro', 'noatime']));
      // the same script runs from the plain mount and is refused on the noexec one
      expect(await h.exec(id, ['/plain/run.sh'])).toMatchObject({ out: 'ran\n', code: 0 });
      const refused = await h.exec(id, ['sh', '-c', '/noexec/run.sh; echo "rc=$?"']);
      expect(refused.out).toMatch(/rc=126/);
      expect(refused.err).toMatch(/Permission denied/);
      // "ro" made the mount read-only
      expect((await h.exec(id, ['sh', '-c', 'touch /ro/x 2>&1; echo "rc=$?"'])).out).toMatch(
        /Read-only file system[\s\S]*rc=1/,
      );
      expect(fs.existsSync(path.join(hostDir, 'x'))).toBe(false);
    });
  });

  test('options Berth does not apply are refused with INVALID_ARGUMENT naming them', async () => {
    await withPod(async (pod, cfg) => {
      for (const [opts, re] of [
        [['size=1m'], /mount \/bad: mount option size=1m is not supported \(accepted: ro, rw, nosuid/],
        [['rshared'], /mount option rshared is propagation: set Mount.propagation instead/],
        [['noexec', 'exec'], /mount option exec contradicts noexec/],
      ] as const) {
        await expect(
          call(h.d.clients.runtime, 'CreateContainer', {
            pod_sandbox_id: pod,
            config: h.ctrConfig('bad', ['true'], {
              mounts: [bindMount('/bad', { mount_options: [...opts] })],
            }),
            sandbox_config: cfg,
          }),
        ).rejects.toMatchObject({ code: 3, details: expect.stringMatching(re) });
      }
      expect(
        (await call(h.d.clients.runtime, 'ListContainers', { filter: { pod_sandbox_id: pod } })).containers,
      ).toEqual([]);
    });
  });

  test('recursive read-only (rro in mount_options) reaches submounts when advertised', async () => {
    const st = await call(h.d.clients.runtime, 'Status', {});
    if (!st.runtime_handlers.find((r) => r.name === '')?.features?.recursive_read_only_mounts) return;
    const sub = path.join(hostDir, 'sub');
    fs.mkdirSync(sub, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'berth-feat-rro', sub]);
    try {
      await withPod(async (pod, cfg) => {
        const id = await h.startCtr(
          pod,
          cfg,
          h.ctrConfig('rro', ['sleep', '3600'], {
            mounts: [bindMount('/rro', { mount_options: ['rro'] }), bindMount('/ro', { readonly: true })],
          }),
        );
        const touch = async (p: string) =>
          (await h.exec(id, ['sh', '-c', `touch ${p} 2>/dev/null; echo $?`])).out.trim();
        expect(await touch('/rro/sub/f')).toBe('1');
        // plain readonly leaves the submount writable: rro is what makes the difference
        expect(await touch('/ro/sub/f')).toBe('0');
      });
    } finally {
      execFileSync('umount', [sub]);
    }
  });

  test('a host-network pod with a user namespace runs (user_namespaces_host_network is true)', async () => {
    const st = await call(h.d.clients.runtime, 'Status', {});
    expect(st.features?.user_namespaces_host_network).toBe(
      st.runtime_handlers.find((r) => r.name === '')?.features?.user_namespaces ?? false,
    );
    if (!st.features?.user_namespaces_host_network) return;
    const ns = {
      network: 'NODE' as const,
      userns_options: {
        mode: 'POD' as const,
        uids: [{ container_id: 0, host_id: 100000, length: 65536 }],
        gids: [{ container_id: 0, host_id: 100000, length: 65536 }],
      },
    };
    const cfg = h.podConfig({ linux: { security_context: { namespace_options: ns } } });
    const pod = await h.runPod(cfg);
    try {
      const id = await h.startCtr(
        pod,
        cfg,
        h.ctrConfig('hostnet', ['sleep', '3600'], {
          linux: { security_context: { namespace_options: ns } },
        }),
      );
      // the host's network namespace, in the pod's own user namespace
      expect((await h.exec(id, ['readlink', '/proc/self/ns/net'])).out.trim()).toBe(
        fs.readlinkSync('/proc/self/ns/net'),
      );
      expect((await h.exec(id, ['readlink', '/proc/self/ns/user'])).out.trim()).not.toBe(
        fs.readlinkSync('/proc/self/ns/user'),
      );
      expect((await h.exec(id, ['cat', '/proc/self/uid_map'])).out.trim().split(/\s+/)).toEqual([
        '0',
        '100000',
        '65536',
      ]);
      // /sys is the host's, read-only: the host's interfaces are listed
      expect((await h.exec(id, ['ls', '/sys/class/net'])).out.split('\n')).toEqual(
        expect.arrayContaining(fs.readdirSync('/sys/class/net')),
      );
      expect((await h.exec(id, ['sh', '-c', 'touch /sys/x 2>/dev/null; echo $?'])).out.trim()).toBe('1');
      // root in the pod is not root on the host
      expect(
        (await h.exec(id, ['sh', '-c', 'ip link add berthck-dummy type dummy 2>&1; echo rc=$?'])).out,
      ).toMatch(/rc=[1-9]/);
    } finally {
      await h.removePod(pod);
    }
  });
});

/** A process's memory limit in its memory cgroup (v1) or memory.max (v2). */
function memoryLimit(pid: number): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  if (v1)
    return fs.readFileSync(`/sys/fs/cgroup/memory${v1.split(':')[2]}/memory.limit_in_bytes`, 'utf8').trim();
  const rel = lines.find((l) => l.startsWith('0::'))?.slice(3) ?? '';
  return fs.readFileSync(`/sys/fs/cgroup${rel}/memory.max`, 'utf8').trim();
}

test('in-place pod resize: recorded and shown; the infra cgroup is left alone; containers resize during it', async () => {
  const rt = h.d.clients.runtime;
  await withPod(async (pod, cfg) => {
    const a = await h.startCtr(pod, cfg, h.ctrConfig('a', ['sleep', '3600']));
    const b = await h.startCtr(pod, cfg, h.ctrConfig('b', ['sleep', '3600']));
    const verbose = async () =>
      JSON.parse((await call(rt, 'PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info.info);
    const infraPid = (await verbose()).pid as number;
    const infraBefore = memoryLimit(infraPid);
    await call(rt, 'UpdatePodSandboxResources', {
      pod_sandbox_id: pod,
      overhead: { memory_limit_in_bytes: String(16 << 20) },
      resources: { cpu_period: '100000', cpu_quota: '50000', memory_limit_in_bytes: String(192 << 20) },
    });
    for (const [id, mb] of [
      [a, 64],
      [b, 128],
    ] as const) {
      await call(rt, 'UpdateContainerResources', {
        container_id: id,
        linux: { memory_limit_in_bytes: String(mb << 20) },
      });
      const st = await call(rt, 'ContainerStatus', { container_id: id, verbose: true });
      expect(st.status?.resources?.linux?.memory_limit_in_bytes).toBe(String(mb << 20));
      expect(memoryLimit(JSON.parse(st.info.info!).pid as number)).toBe(String(mb << 20));
    }
    const got = (await verbose()).podResources;
    expect(got.resources).toMatchObject({ cpu_quota: '50000', memory_limit_in_bytes: String(192 << 20) });
    expect(got.overhead.memory_limit_in_bytes).toBe(String(16 << 20));
    // Berth owns no pod-level cgroup (kubelet's cgroup_parent is): the infra container's is unchanged
    expect(memoryLimit(infraPid)).toBe(infraBefore);
    // a second resize with only resources keeps the recorded overhead
    await call(rt, 'UpdatePodSandboxResources', {
      pod_sandbox_id: pod,
      resources: { memory_limit_in_bytes: String(256 << 20) },
    });
    expect((await verbose()).podResources).toMatchObject({
      overhead: { memory_limit_in_bytes: String(16 << 20) },
      resources: { memory_limit_in_bytes: String(256 << 20) },
    });
    await expect(
      call(rt, 'UpdatePodSandboxResources', { pod_sandbox_id: pod, overhead: { cpu_quota: '-5' } }),
    ).rejects.toMatchObject({ code: 3, details: expect.stringMatching(/^overhead\./) });
  });
});

describe('CheckpointPod / RestorePod', () => {
  let out: string;
  beforeEach(() => {
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-podckpt-'));
  });
  afterEach(() => fs.rmSync(out, { recursive: true, force: true }));

  test('bad input first (NOT_FOUND, INVALID_ARGUMENT), then FAILED_PRECONDITION quoting criu check where CRIU cannot work', async () => {
    const rt = h.d.clients.runtime;
    const criu = await criuUnavailable();
    await withPod(async (pod, cfg) => {
      const id = await h.startCtr(pod, cfg, h.ctrConfig('app', ['sleep', '3600']));
      const ck = (o: Record<string, unknown>) =>
        call(rt, 'CheckpointPod', { pod_sandbox_id: pod, output_path: out, container_ids: [id], ...o });
      await expect(ck({ pod_sandbox_id: 'f'.repeat(64) })).rejects.toMatchObject({ code: 5 });
      await expect(ck({ container_ids: ['e'.repeat(64)] })).rejects.toMatchObject({ code: 5 });
      await expect(ck({ container_ids: [] })).rejects.toMatchObject({
        code: 3,
        details: expect.stringMatching(/container_ids/),
      });
      await expect(ck({ container_ids: [id, id] })).rejects.toMatchObject({
        code: 3,
        details: expect.stringMatching(/twice/),
      });
      await expect(ck({ output_path: 'relative' })).rejects.toMatchObject({ code: 3 });
      await expect(ck({ output_path: path.join(out, 'missing') })).rejects.toMatchObject({ code: 3 });
      await expect(ck({ options: { x: 'y' } })).rejects.toMatchObject({
        code: 3,
        details: expect.stringMatching(/options/),
      });
      fs.writeFileSync(path.join(out, 'junk'), '');
      await expect(ck({})).rejects.toMatchObject({ code: 3, details: expect.stringMatching(/not empty/) });
      fs.rmSync(path.join(out, 'junk'));
      if (criu === undefined) return; // CRIU works here: the checkpoint itself is not covered by this test
      await expect(ck({})).rejects.toMatchObject({
        code: 9,
        details: expect.stringContaining('criu check fails on this kernel'),
      });
      // nothing left behind, and the container runs on (not left paused)
      expect(fs.readdirSync(out)).toEqual([]);
      expect((await h.exec(id, ['echo', 'alive'])).out).toBe('alive\n');
      expect((await call(rt, 'ContainerStatus', { container_id: id })).status?.state).toBe(
        'CONTAINER_RUNNING',
      );
    });
  });

  test('RestorePod: missing checkpoint NOT_FOUND, not a checkpoint INVALID_ARGUMENT, nothing created', async () => {
    const rt = h.d.clients.runtime;
    const before = (await call(rt, 'ListPodSandbox', {})).items.length;
    const restore = (o: Record<string, unknown>) =>
      call(rt, 'RestorePod', {
        checkpoint_path: out,
        config: h.podConfig(),
        container_configs: [h.ctrConfig('app', [])],
        ...o,
      });
    await expect(restore({ checkpoint_path: 'rel' })).rejects.toMatchObject({ code: 3 });
    await expect(restore({ checkpoint_path: path.join(out, 'gone') })).rejects.toMatchObject({ code: 5 });
    await expect(restore({})).rejects.toMatchObject({
      code: 3,
      details: expect.stringMatching(/not a Berth pod checkpoint/),
    });
    expect((await call(rt, 'ListPodSandbox', {})).items.length).toBe(before);
  });

  test('RestorePod: a valid checkpoint and request get FAILED_PRECONDITION quoting criu check; mismatches INVALID_ARGUMENT first', async () => {
    const criu = await criuUnavailable();
    const rt = h.d.clients.runtime;
    const podCfg = h.podConfig();
    const app = h.ctrConfig('app', ['sleep', '3600']);
    const manifest = buildManifest({
      berth: 'test',
      criApi: 'test',
      now: new Date(),
      pod: { id: 'c'.repeat(64), config: podCfg as PodSandboxConfig__Output, runtimeHandler: 'runc' },
      containers: [{ id: 'd'.repeat(64), config: app as ContainerConfig__Output, imageId: 'sha256:x' }],
    });
    fs.mkdirSync(path.join(out, 'containers', '0'), { recursive: true });
    fs.writeFileSync(path.join(out, manifest.containers[0]!.archive), '');
    await writePodCheckpointFiles(out, manifest, podCfg as PodSandboxConfig__Output, [
      app as ContainerConfig__Output,
    ]);
    const files = fs.readdirSync(out, { recursive: true }).sort();
    const before = (await call(rt, 'ListPodSandbox', {})).items.length;
    const restore = (o: Record<string, unknown>) =>
      call(rt, 'RestorePod', { checkpoint_path: out, config: h.podConfig(), container_configs: [app], ...o });
    await expect(restore({ container_configs: [{ ...app, command: ['top'] }] })).rejects.toMatchObject({
      code: 3,
      details: expect.stringMatching(/command differs/),
    });
    await expect(restore({ runtime_handler: 'nope' })).rejects.toMatchObject({ code: 3 });
    await expect(restore({ options: { a: 'b' } })).rejects.toMatchObject({ code: 3 });
    // a config CreateContainer would refuse is refused before CRIU is asked
    await expect(restore({ container_configs: [{ ...app, log_path: '/abs.log' }] })).rejects.toMatchObject({
      code: 3,
      details: expect.stringMatching(/container_configs\[app\]: config.log_path/),
    });
    if (criu !== undefined)
      await expect(restore({})).rejects.toMatchObject({
        code: 9,
        details: expect.stringContaining('criu check fails on this kernel'),
      });
    // where CRIU works: the sandbox is made, the empty archive is refused, and all is rolled back
    else
      await expect(restore({})).rejects.toMatchObject({
        code: 3,
        details: expect.stringContaining('checkpoint archive'),
      });
    // the checkpoint is not modified and nothing was created
    expect(fs.readdirSync(out, { recursive: true }).sort()).toEqual(files);
    expect((await call(rt, 'ListPodSandbox', {})).items.length).toBe(before);
  });
});
