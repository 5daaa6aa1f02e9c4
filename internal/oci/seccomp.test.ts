import { buildSeccomp, renderSeccomp, seccompRequestOf, validateSeccompProfile } from './seccomp';
import { RUNTIME_DEFAULT_PROFILE } from './seccomp-default';
import { DEFAULT_CAPABILITIES } from './capabilities';
import { containerSecurity } from './test-fixtures';

const caps = [...DEFAULT_CAPABILITIES];
const names = (s: { syscalls?: { names: string[] }[] } | undefined) =>
  (s?.syscalls ?? []).flatMap((x) => x.names);

describe('seccompRequestOf', () => {
  it('reads the seccomp field', () => {
    expect(
      seccompRequestOf(containerSecurity({ seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } })),
    ).toEqual({
      type: 'RuntimeDefault',
    });
    expect(
      seccompRequestOf(
        containerSecurity({ seccomp: { profile_type: 'Localhost', localhost_ref: '/etc/p.json' } }),
      ),
    ).toEqual({ type: 'Localhost', localhostRef: '/etc/p.json' });
    expect(() =>
      seccompRequestOf(containerSecurity({ seccomp: { profile_type: 'Unconfined', localhost_ref: '/x' } })),
    ).toThrow(/only allowed with profile_type Localhost/);
    expect(() =>
      seccompRequestOf(containerSecurity({ seccomp: { profile_type: 'Localhost', localhost_ref: 'rel' } })),
    ).toThrow(/absolute/);
  });
  it('reads the deprecated seccomp_profile_path', () => {
    expect(seccompRequestOf(containerSecurity({ seccomp_profile_path: 'runtime/default' }))).toEqual({
      type: 'RuntimeDefault',
    });
    expect(seccompRequestOf(containerSecurity({ seccomp_profile_path: 'docker/default' }))).toEqual({
      type: 'RuntimeDefault',
    });
    expect(seccompRequestOf(containerSecurity({ seccomp_profile_path: 'unconfined' }))).toEqual({
      type: 'Unconfined',
    });
    expect(seccompRequestOf(containerSecurity({ seccomp_profile_path: 'localhost//p.json' }))).toEqual({
      type: 'Localhost',
      localhostRef: '/p.json',
    });
    expect(() => seccompRequestOf(containerSecurity({ seccomp_profile_path: 'weird' }))).toThrow(
      /unsupported/,
    );
    expect(seccompRequestOf(containerSecurity())).toBeUndefined();
  });
});

describe('buildSeccomp', () => {
  it('RuntimeDefault: EPERM default, x86 family, allow list, capability rules', () => {
    const s = buildSeccomp({
      privileged: false,
      request: { type: 'RuntimeDefault' },
      capabilities: caps,
      arch: 'amd64',
    });
    expect(s?.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(s?.defaultErrnoRet).toBe(1);
    expect(s?.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const n = names(s);
    for (const sc of ['read', 'write', 'execve', 'openat', 'socket', 'arch_prctl', 'chroot', 'clone'])
      expect(n).toContain(sc);
    for (const sc of ['mount', 'unshare', 'setns', 'reboot', 'kexec_load', 'io_uring_setup', 'bpf'])
      expect(n).not.toContain(sc);
    const clone3 = s?.syscalls?.find((x) => x.names.includes('clone3'));
    expect(clone3).toEqual({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    const clone = s?.syscalls?.find((x) => x.names.length === 1 && x.names[0] === 'clone');
    expect(clone?.args).toEqual([{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }]);
  });
  it('CAP_SYS_ADMIN unlocks mount and plain clone', () => {
    const s = buildSeccomp({
      privileged: false,
      request: { type: 'RuntimeDefault' },
      capabilities: [...caps, 'CAP_SYS_ADMIN'],
      arch: 'amd64',
    });
    const n = names(s);
    expect(n).toContain('mount');
    expect(n).toContain('unshare');
    expect(s?.syscalls?.some((x) => x.names.includes('clone') && x.args)).toBe(false);
    expect(s?.syscalls?.some((x) => x.names.includes('clone3') && x.action === 'SCMP_ACT_ERRNO')).toBe(false);
  });
  it('arm64 gets its own architectures and no x86 calls', () => {
    const s = buildSeccomp({
      privileged: false,
      request: { type: 'RuntimeDefault' },
      capabilities: caps,
      arch: 'arm64',
    });
    expect(s?.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(names(s)).not.toContain('arch_prctl');
    expect(names(s)).toContain('set_tls');
  });
  it('Unconfined, unset and privileged → none; unset may default to RuntimeDefault', () => {
    expect(
      buildSeccomp({ privileged: false, request: { type: 'Unconfined' }, capabilities: caps }),
    ).toBeUndefined();
    expect(buildSeccomp({ privileged: false, capabilities: caps })).toBeUndefined();
    expect(
      buildSeccomp({ privileged: true, request: { type: 'RuntimeDefault' }, capabilities: caps }),
    ).toBeUndefined();
    expect(
      buildSeccomp({ privileged: false, unsetProfile: 'RuntimeDefault', capabilities: caps, arch: 'amd64' })
        ?.defaultAction,
    ).toBe('SCMP_ACT_ERRNO');
  });
  it('Localhost: OCI and Docker shapes render; bad shapes are refused', () => {
    const oci = {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
    };
    expect(
      buildSeccomp({
        privileged: false,
        request: { type: 'Localhost', localhostRef: '/p' },
        localhostProfile: oci,
        capabilities: caps,
      }),
    ).toEqual({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
    });
    const docker = {
      defaultAction: 'SCMP_ACT_ERRNO',
      archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86'] }],
      syscalls: [
        { name: 'read', action: 'SCMP_ACT_ALLOW', args: [] },
        { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      ],
    };
    const r = buildSeccomp({
      privileged: false,
      request: { type: 'Localhost' },
      localhostProfile: docker,
      capabilities: caps,
      arch: 'amd64',
    });
    expect(r).toEqual({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }],
    });
    expect(() => validateSeccompProfile([])).toThrow(/JSON object/);
    expect(() => validateSeccompProfile({ defaultAction: 'NOPE' })).toThrow(/defaultAction/);
    expect(() =>
      validateSeccompProfile({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['x'], action: 'bad' }],
      }),
    ).toThrow(/syscalls\[0\]: invalid action/);
    expect(() =>
      validateSeccompProfile({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['x'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0 }] }],
      }),
    ).toThrow(/args\[0\]/);
    expect(() =>
      buildSeccomp({
        privileged: false,
        request: { type: 'Localhost', localhostRef: '/p' },
        capabilities: caps,
      }),
    ).toThrow(/not loaded/);
  });
  it('the default profile lists no syscall twice in its main allow rule', () => {
    const main = renderSeccomp(RUNTIME_DEFAULT_PROFILE, caps, 'amd64').syscalls?.[0].names ?? [];
    expect(new Set(main).size).toBe(main.length);
    expect(main.length).toBeGreaterThan(300);
  });
});
