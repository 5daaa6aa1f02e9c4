// berth-exec against runc exec: for each kind of container, the same probe run through ExecSync
// (which takes berth-exec) and through `runc exec` on the same container must see the same process:
// ids and groups, the five capability sets, no_new_privs, seccomp mode and filter count, cgroups,
// namespaces, rlimits, oom_score_adj, umask, cwd, environment and open fds; a syscall the container's
// seccomp profile blocks stays blocked. Then the contract ExecSync relies on: exit codes, a missing
// binary, timeouts, and a reused-pid guard.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call } from '../../api/client';
import type { ContainerConfig, PodSandboxConfig } from '../../api/generated';
import { startHarness, type Harness } from '../lab/harness';

let h: Harness;
let profileDir: string;

beforeAll(async () => {
  h = await startHarness({ bridge: 'berthex0', subnet: '10.236.0.0/24', prefix: 'ex' });
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-seccomp-'));
}, 120_000);

afterAll(async () => {
  await h?.cleanup();
  if (profileDir) fs.rmSync(profileDir, { recursive: true, force: true });
});

const PROBE = [
  'grep -E "^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status',
  'echo "-- cgroup"; cat /proc/self/cgroup',
  'echo "-- ns"; for n in mnt uts ipc net pid cgroup user; do echo "$n $(readlink /proc/self/ns/$n)"; done',
  'echo "-- limits"; cat /proc/self/limits',
  'echo "-- oom $(cat /proc/self/oom_score_adj) umask $(umask) cwd $(pwd) ppid-ns-pid1 $(cat /proc/1/comm)"',
  'echo "-- env"; env | sort',
  // open fds: stdin, stdout, stderr and ls's own dir fd; nothing of the exec's plumbing leaks in
  'echo "-- fds $(ls /proc/self/fd | tr "\\n" " ")"',
].join('; ');

async function execStats(): Promise<{ native: number; runtime: number }> {
  const r = await call(h.d.clients.runtime, 'Status', { verbose: true });
  return (JSON.parse(r.info.exec) as Record<string, { native: number; runtime: number }>).runc;
}

function runcExec(id: string, cmd: string[]): { out: string; err: string; code: number } {
  const r = spawnSync('runc', ['--root', path.join(h.d.state, 'runtime', 'runc'), 'exec', id, ...cmd], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { out: r.stdout, err: r.stderr, code: r.status ?? -1 };
}

/** ExecSync (berth-exec, checked by the counter) of cmd; returns what it printed. */
async function nativeExec(id: string, cmd: string[]): Promise<{ out: string; err: string; code: number }> {
  const before = await execStats();
  const r = await h.exec(id, cmd, 20);
  const after = await execStats();
  expect(after.native).toBe(before.native + 1);
  return r;
}

async function startIn(
  pod: PodSandboxConfig,
  name: string,
  linux: ContainerConfig['linux'],
  extra: Partial<ContainerConfig> = {},
): Promise<string> {
  const podId = await h.runPod(pod);
  return h.startCtr(podId, pod, h.ctrConfig(name, ['sleep', '3600'], { linux, ...extra }));
}

function writeProfile(name: string, profile: object): string {
  const file = path.join(profileDir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(profile));
  return file;
}

/** A profile that allows everything but chmod-like calls (EPERM) and, by argument, personality. */
function chmodBlockingProfile(): string {
  return writeProfile('no-chmod', {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: ['chmod', 'fchmod', 'fchmodat', 'fchmodat2'], action: 'SCMP_ACT_ERRNO' },
      {
        names: ['personality'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 22,
        args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }],
      },
    ],
  });
}

const cases: [string, () => Promise<string>][] = [
  [
    'default (RuntimeDefault seccomp)',
    () =>
      startIn(h.podConfig(), 'def', {
        security_context: { seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } },
      }),
  ],
  [
    'privileged',
    () =>
      startIn(h.podConfig({ linux: { security_context: { privileged: true } } }), 'priv', {
        security_context: { privileged: true },
      }),
  ],
  [
    'non-root with groups and no_new_privs',
    () =>
      startIn(h.podConfig(), 'user', {
        security_context: {
          run_as_user: { value: '1000' },
          run_as_group: { value: '1000' },
          supplemental_groups: ['2000', '3000'],
          no_new_privs: true,
          capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['CHOWN'] },
          seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
        },
      }),
  ],
  [
    'read-only rootfs',
    () =>
      startIn(h.podConfig(), 'ro', {
        security_context: { readonly_rootfs: true },
      }),
  ],
  [
    'custom seccomp (Localhost)',
    () =>
      startIn(h.podConfig(), 'custom', {
        security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: chmodBlockingProfile() } },
      }),
  ],
];

describe.each(cases)('berth-exec sees what runc exec sees: %s', (_name, start) => {
  let id: string;
  beforeAll(async () => {
    id = await start();
  }, 60_000);

  it('the same process attributes', async () => {
    const viaRunc = runcExec(id, ['sh', '-c', PROBE]);
    expect(viaRunc.err).toBe('');
    expect(viaRunc.code).toBe(0);
    const viaHelper = await nativeExec(id, ['sh', '-c', PROBE]);
    expect(viaHelper.err).toBe('');
    expect(viaHelper.code).toBe(0);
    expect(viaHelper.out).toBe(viaRunc.out);
    // the probe saw something: a real status, the container's namespaces
    expect(viaHelper.out).toMatch(/^Uid:/m);
    expect(viaHelper.out).toMatch(/^mnt mnt:\[\d+\]$/m);
    expect(viaHelper.out).toMatch(/^-- fds 0 1 2 3 $/m);
  });

  it('the same answer to a syscall the profile may block', async () => {
    const probe =
      'unshare -U true 2>&1; echo "unshare=$?"; touch /tmp/m 2>&1 && chmod 600 /tmp/m 2>&1; echo "chmod=$?"';
    const viaRunc = runcExec(id, ['sh', '-c', probe]);
    const viaHelper = await nativeExec(id, ['sh', '-c', probe]);
    expect(viaHelper.out).toBe(viaRunc.out);
  });
});

describe('what the profiles block, through berth-exec', () => {
  it('RuntimeDefault blocks unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN; privileged does not', async () => {
    const def = await startIn(h.podConfig(), 'def2', {
      security_context: { seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } },
    });
    const r = await nativeExec(def, ['sh', '-c', 'unshare -U true; echo "rc=$?"']);
    expect(r.out.trim()).toMatch(/rc=[1-9]/);
    expect(r.err).toMatch(/Operation not permitted/);
    const status = await nativeExec(def, ['grep', '-E', '^Seccomp', '/proc/self/status']);
    expect(status.out).toMatch(/^Seccomp:\s+2$/m);
  });

  it('a Localhost profile blocking chmod makes chmod fail with EPERM, the rest works', async () => {
    const id = await startIn(h.podConfig(), 'custom2', {
      security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: chmodBlockingProfile() } },
    });
    const r = await nativeExec(id, ['sh', '-c', 'touch /tmp/f && chmod 600 /tmp/f; echo "rc=$?"']);
    expect(r.err).toMatch(/Operation not permitted/);
    expect(r.out.trim()).toBe('rc=1');
  });
});

describe('the ExecSync contract through berth-exec', () => {
  let id: string;
  beforeAll(async () => {
    id = await startIn(h.podConfig(), 'contract', {});
  }, 60_000);

  it('exit codes, output and a signal-killed command', async () => {
    const r = await nativeExec(id, ['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r).toEqual({ out: 'out\n', err: 'err\n', code: 7 });
    const k = await nativeExec(id, ['sh', '-c', 'kill -9 $$']);
    expect(k.code).toBe(137);
  });

  it('a missing binary is an error naming it, as with runc', async () => {
    const before = await execStats();
    await expect(
      call(h.d.clients.runtime, 'ExecSync', { container_id: id, cmd: ['no-such-binary'], timeout: 5 }),
    ).rejects.toThrow(/no-such-binary.*executable file not found/);
    expect((await execStats()).native).toBe(before.native + 1);
  });

  it('a command that cannot be run fails as with runc: same words, INVALID_ARGUMENT', async () => {
    // runc's stderr is logfmt (quotes escaped); berthd's answer quotes runc's message in parentheses
    const fragment = (text: string): string | undefined =>
      /exec: "[^"]*": [^\n"})]*/.exec(text.replace(/\\"/g, '"'))?.[0];
    for (const cmd of [['/nonexistent'], ['/etc'], ['/etc/passwd'], ['no-such-binary']]) {
      const viaRunc = runcExec(id, cmd);
      expect(viaRunc.code).not.toBe(0);
      const err = (await call(h.d.clients.runtime, 'ExecSync', { container_id: id, cmd, timeout: 5 }).catch(
        (e: unknown) => e,
      )) as { code?: number; details?: string };
      expect(err.code).toBe(3); // INVALID_ARGUMENT: the caller's command
      expect(fragment(err.details ?? '')).toBe(fragment(viaRunc.err));
      expect(fragment(viaRunc.err)).toContain(cmd[0]);
    }
  });

  it('a timed-out command returns DEADLINE_EXCEEDED and leaves no process', async () => {
    const started = Date.now();
    await expect(
      call(h.d.clients.runtime, 'ExecSync', { container_id: id, cmd: ['sleep', '37'], timeout: 1 }),
    ).rejects.toMatchObject({ code: 4 });
    expect(Date.now() - started).toBeLessThan(5000);
    const ps = await nativeExec(id, ['ps', '-o', 'args']);
    expect(ps.out).not.toContain('sleep 37');
  });

  it('a stopped container is FAILED_PRECONDITION', async () => {
    const pod = h.podConfig();
    const podId = await h.runPod(pod);
    const cid = await h.startCtr(podId, pod, h.ctrConfig('short', ['sleep', '3600']));
    await call(h.d.clients.runtime, 'StopContainer', { container_id: cid, timeout: 0 });
    await expect(
      call(h.d.clients.runtime, 'ExecSync', { container_id: cid, cmd: ['true'], timeout: 5 }),
    ).rejects.toMatchObject({ code: 9 });
  });
});
