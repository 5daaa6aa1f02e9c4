import type { OciSpec } from '../oci/spec-types';
import {
  cgroupProcsFiles,
  execHelperArgs,
  mergeEnv,
  seccompProgram,
  statStartTime,
  type ExecTarget,
} from './exec-helper-plan';

/** A container spec as Berth renders it, trimmed to what berth-exec reads (unit tests only). */
function buildSpecFixture(): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      user: { uid: 1000, gid: 1000, umask: 18, additionalGids: [10, 20] },
      args: ['sleep', '3600'],
      env: ['A=1', 'B=2'],
      cwd: '/',
      capabilities: {
        bounding: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
        effective: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE'],
        permitted: ['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_NOT_A_CAP'],
        inheritable: [],
        ambient: [],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }],
      noNewPrivileges: true,
      oomScoreAdj: -997,
    },
    root: { path: 'rootfs' },
    mounts: [],
    linux: {
      namespaces: [
        { type: 'pid' },
        { type: 'network', path: '/run/netns/x' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
      ],
      seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] },
    },
  };
}

const target: ExecTarget = {
  id: 'c1',
  pid: 4242,
  startTime: '987654',
  cgroupProcs: ['/sys/fs/cgroup/pids/k/c1/cgroup.procs'],
  seccompBpf: '/x/seccomp-c1.bpf',
};

describe('execHelperArgs', () => {
  it('carries everything runc exec applies from the process spec', () => {
    const r = execHelperArgs(buildSpecFixture(), target, { env: ['B=override', 'C=3'], cwd: '/work' });
    expect(r.ok).toBe(true);
    const args = r.ok ? r.value : [];
    const opt = (name: string): string[] => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []));
    expect(opt('--pid')).toEqual(['4242']);
    expect(opt('--start-time')).toEqual(['987654']);
    expect(opt('--ns')).toEqual(['pid,net,ipc,uts,mnt']);
    expect(opt('--rlimit')).toEqual(['7:1048576:1048576']);
    expect(opt('--uid')).toEqual(['1000']);
    expect(opt('--groups')).toEqual(['10,20']);
    expect(opt('--umask')).toEqual(['18']);
    // CAP_CHOWN (0) and CAP_NET_BIND_SERVICE (10); ambient empty
    expect(opt('--caps')).toEqual(['401:401:401:0:0']);
    expect(opt('--no-new-privs')).toEqual(['1']);
    expect(opt('--oom-score-adj')).toEqual(['-997']);
    expect(opt('--seccomp-bpf')).toEqual(['/x/seccomp-c1.bpf']);
    expect(opt('--session-keyring')).toEqual(['_ses.c1']);
    expect(opt('--cwd')).toEqual(['/work']);
    expect(opt('--env')).toEqual(['A=1', 'B=override', 'C=3']);
  });

  it('falls back to runc for what it cannot reproduce', () => {
    const reason = (mut: (s: ReturnType<typeof buildSpecFixture>) => void): string | undefined => {
      const s = buildSpecFixture();
      mut(s);
      const r = execHelperArgs(s, target);
      return r.ok ? undefined : r.reason;
    };
    expect(reason((s) => (s.process.apparmorProfile = 'p'))).toMatch(/AppArmor/);
    expect(reason((s) => (s.process.selinuxLabel = 'l'))).toMatch(/SELinux/);
    expect(reason((s) => ((s.process as unknown as Record<string, unknown>).ioPriority = {}))).toMatch(
      /ioPriority/,
    );
    expect(reason((s) => (s.process.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]))).toMatch(
      /rlimit/,
    );
    expect(reason((s) => (s.linux.seccomp!.flags = ['SECCOMP_FILTER_FLAG_NEW']))).toMatch(/flag/);
    expect(reason(() => undefined)).toBeUndefined();
  });
});

describe('seccompProgram', () => {
  it('renders runc’s rules: errno defaults, arches, AND of distinct args, OR when an arg repeats', () => {
    const r = seccompProgram({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
        { names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        {
          names: ['clone'],
          action: 'SCMP_ACT_ALLOW',
          args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        {
          names: ['personality'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
          ],
        },
        {
          names: ['socket'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 2, op: 'SCMP_CMP_NE' },
          ],
        },
      ],
    });
    expect(r).toEqual({
      ok: true,
      value: [
        'default errno 1',
        'arch x86_64',
        'arch x32',
        'rule allow 1 read 0',
        'rule allow 1 write 0',
        'rule errno 13 chmod 0',
        'rule allow 1 clone 1 0 masked_eq 2114060288 0',
        'rule allow 1 personality 1 0 eq 0 0',
        'rule allow 1 personality 1 0 eq 8 0',
        'rule allow 1 socket 2 0 eq 1 0 1 ne 2 0',
        '',
      ].join('\n'),
    });
  });

  it('leaves notify profiles to runc', () => {
    expect(seccompProgram({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/x.sock' }).ok).toBe(false);
    expect(
      seccompProgram({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['x'], action: 'SCMP_ACT_NOTIFY' }],
      }).ok,
    ).toBe(false);
  });
});

describe('cgroupProcsFiles', () => {
  const mountinfo = [
    '25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
    '26 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd',
    '27 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
    '28 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    '29 25 0:27 /nested /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids',
    '30 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
  ].join('\n');

  it('maps each hierarchy to its mount, v1 and v2, stripping a mount root', () => {
    const procCgroup = [
      '5:pids:/nested/k/c1',
      '4:memory:/k/c1',
      '3:cpu,cpuacct:/k/c1',
      '1:name=systemd:/k/c1',
      '0::/',
      '9:rdma:/',
    ].join('\n');
    expect(cgroupProcsFiles(procCgroup, mountinfo)).toEqual([
      '/sys/fs/cgroup/pids/k/c1/cgroup.procs',
      '/sys/fs/cgroup/memory/k/c1/cgroup.procs',
      '/sys/fs/cgroup/cpu,cpuacct/k/c1/cgroup.procs',
      '/sys/fs/cgroup/systemd/k/c1/cgroup.procs',
      '/sys/fs/cgroup/unified/cgroup.procs',
    ]);
  });
});

describe('small parsers', () => {
  it('statStartTime reads field 22 past a comm with spaces and parens', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    fields[22 - 3] = '123456';
    expect(statStartTime(`77 (a) b (c) ${fields.join(' ')}`)).toBe('123456');
    expect(statStartTime('garbage')).toBeUndefined();
  });

  it('mergeEnv replaces by name and appends', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4'])).toEqual(['A=1', 'B=3', 'C=4']);
    expect(mergeEnv(['A=1'], [])).toEqual(['A=1']);
  });
});
