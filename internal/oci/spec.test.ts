import { Status } from '../errors';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from './capabilities';
import {
  ANNOTATIONS,
  buildContainerSpec,
  buildSandboxSpec,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
} from './spec';
import {
  containerConfig,
  containerInput,
  mount,
  namespaceOptions,
  podConfig,
  sandboxInput,
} from './test-fixtures';

function errOf(fn: () => unknown): { code?: number; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: number; message: string };
  }
  throw new Error('expected an error');
}

const privilegedPod = podConfig({}, { privileged: true });

describe('buildContainerSpec', () => {
  it('a plain container', () => {
    const spec = buildContainerSpec(containerInput());
    expect(spec.ociVersion).toBe('1.0.2');
    expect(spec.process).toMatchObject({
      user: { uid: 0, gid: 0, additionalGids: [0] },
      args: ['sh'],
      cwd: '/',
      oomScoreAdj: 0,
    });
    expect(spec.process.terminal).toBeUndefined();
    expect(spec.process.env).toEqual([
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'HOSTNAME=pod-host',
    ]);
    expect(new Set(spec.process.capabilities?.effective)).toEqual(new Set(DEFAULT_CAPABILITIES));
    expect(spec.root).toEqual({ path: '/run/berth/c1/rootfs' });
    expect(spec.hostname).toBeUndefined();
    expect(spec.linux.cgroupsPath).toBe('/berth/berth-c1');
    expect(spec.linux.maskedPaths).toEqual(DEFAULT_MASKED_PATHS);
    expect(spec.linux.readonlyPaths).toEqual(DEFAULT_READONLY_PATHS);
    expect(spec.linux.resources?.devices).toEqual([{ allow: false, access: 'rwm' }]);
    expect(spec.linux.devices).toBeUndefined();
    expect(spec.linux.seccomp).toBeUndefined();
    expect(spec.annotations).toEqual({
      [ANNOTATIONS.containerType]: 'container',
      [ANNOTATIONS.sandboxId]: 's1',
      [ANNOTATIONS.sandboxName]: 'pod',
      [ANNOTATIONS.sandboxNamespace]: 'default',
      [ANNOTATIONS.sandboxUid]: 'uid-1',
      [ANNOTATIONS.containerName]: 'app',
      [ANNOTATIONS.imageName]: 'docker.io/library/busybox:latest',
    });
    // JSON-clean: no undefined anywhere
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  });

  it('process fields from the request', () => {
    const config = containerConfig({
      command: ['/bin/app'],
      args: ['--x'],
      working_dir: '/srv',
      envs: [{ key: 'A', value: Buffer.from('1') }],
      tty: true,
    });
    const spec = buildContainerSpec(
      containerInput({
        config,
        user: { uid: 1000, gid: 1001, additionalGids: [1001, 10], home: '/home/app' },
      }),
    );
    expect(spec.process.args).toEqual(['/bin/app', '--x']);
    expect(spec.process.cwd).toBe('/srv');
    expect(spec.process.terminal).toBe(true);
    expect(spec.process.env).toContain('A=1');
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1001, additionalGids: [1001, 10] });
  });

  it('no command at all → invalidArgument', () => {
    const e = errOf(() => buildContainerSpec(containerInput({ image: { config: {} } })));
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toMatch(/no command specified/);
  });

  describe('namespaces per mode', () => {
    const types = (o: Parameters<typeof namespaceOptions>[0], extra = {}) =>
      buildContainerSpec(
        containerInput({ config: containerConfig({}, { namespace_options: namespaceOptions(o) }), ...extra }),
      ).linux.namespaces;
    it('pod network/ipc/uts joined, own pid (CONTAINER)', () => {
      expect(types({})).toEqual([
        { type: 'mount' },
        { type: 'network', path: '/run/berth/netns/s1' },
        { type: 'uts', path: '/proc/100/ns/uts' },
        { type: 'ipc', path: '/proc/100/ns/ipc' },
        { type: 'pid' },
      ]);
    });
    it('pid POD joins the infra pid namespace', () => {
      expect(types({ pid: 'POD' })).toContainEqual({ type: 'pid', path: '/proc/100/ns/pid' });
    });
    it('pid NODE, network NODE, ipc NODE → host namespaces', () => {
      expect(types({ pid: 'NODE', network: 'NODE', ipc: 'NODE' })).toEqual([{ type: 'mount' }]);
    });
    it('pid TARGET joins the target container', () => {
      expect(
        types({ pid: 'TARGET', target_id: 'c0' }, { targetPidNamespace: '/proc/200/ns/pid' }),
      ).toContainEqual({
        type: 'pid',
        path: '/proc/200/ns/pid',
      });
      expect(() => types({ pid: 'TARGET', target_id: 'c0' })).toThrow(/target container c0/);
      expect(() => types({ pid: 'TARGET' }, { targetPidNamespace: '/x' })).toThrow(/target_id/);
    });
    it('missing sandbox namespace path → failedPrecondition', () => {
      const e = errOf(() => types({}, { namespaces: {} }));
      expect(e.code).toBe(Status.FAILED_PRECONDITION);
    });
    it('cgroup namespace when the runtime feature asks for it', () => {
      expect(types({}, { features: { rro: true, cgroupNamespace: true } })).toContainEqual({
        type: 'cgroup',
      });
    });
    it('user namespace with mappings (mode POD)', () => {
      const userns = {
        mode: 'POD' as const,
        uids: [{ host_id: 100000, container_id: 0, length: 65536 }],
        gids: [{ host_id: 200000, container_id: 0, length: 65536 }],
      };
      const spec = buildContainerSpec(
        containerInput({
          config: containerConfig({}, { namespace_options: namespaceOptions({ userns_options: userns }) }),
          namespaces: { ...containerInput().namespaces, user: '/proc/100/ns/user' },
        }),
      );
      expect(spec.linux.namespaces).toContainEqual({ type: 'user', path: '/proc/100/ns/user' });
      expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 100000, size: 65536 }]);
      expect(spec.linux.gidMappings).toEqual([{ containerID: 0, hostID: 200000, size: 65536 }]);
      expect(() =>
        buildContainerSpec(
          containerInput({
            config: containerConfig(
              {},
              { namespace_options: namespaceOptions({ userns_options: { ...userns, mode: 'CONTAINER' } }) },
            ),
          }),
        ),
      ).toThrow(/not supported/);
    });
  });

  describe('privileged', () => {
    const spec = buildContainerSpec(
      containerInput({
        sandboxConfig: privilegedPod,
        config: containerConfig(
          {},
          {
            privileged: true,
            seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
            masked_paths: ['/proc/x'],
          },
        ),
      }),
    );
    it('all capabilities, host devices, no seccomp, no masked paths, writable sysfs', () => {
      expect(spec.process.capabilities?.bounding).toEqual([...ALL_CAPABILITIES]);
      expect(spec.linux.devices).toEqual([
        { path: '/dev/kmsg', type: 'c', major: 1, minor: 11, fileMode: 0o644, uid: 0, gid: 0 },
      ]);
      expect(spec.linux.resources?.devices).toEqual([{ allow: true, access: 'rwm' }]);
      expect(spec.linux.seccomp).toBeUndefined();
      expect(spec.linux.maskedPaths).toBeUndefined();
      expect(spec.linux.readonlyPaths).toBeUndefined();
      expect(spec.mounts.find((m) => m.destination === '/sys')?.options).toContain('rw');
    });
    it('host capabilities limit privileged', () => {
      const s = buildContainerSpec(
        containerInput({
          sandboxConfig: privilegedPod,
          config: containerConfig({}, { privileged: true }),
          host: { ...containerInput().host, capabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN'] },
        }),
      );
      expect(s.process.capabilities?.effective).toEqual(['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    });
    it('needs a privileged pod', () => {
      expect(() =>
        buildContainerSpec(containerInput({ config: containerConfig({}, { privileged: true }) })),
      ).toThrow(/privileged pod/);
    });
  });

  it('capabilities add/drop reach the spec and seccomp follows them', () => {
    const spec = buildContainerSpec(
      containerInput({
        config: containerConfig(
          {},
          {
            capabilities: {
              add_capabilities: ['SYS_ADMIN'],
              drop_capabilities: ['ALL'],
              add_ambient_capabilities: [],
            },
            seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
          },
        ),
      }),
    );
    expect(spec.process.capabilities?.bounding).toEqual(['CAP_SYS_ADMIN']);
    expect(spec.linux.seccomp?.syscalls?.some((s) => s.names.includes('mount'))).toBe(true);
    expect(spec.linux.seccomp?.syscalls?.some((s) => s.names.includes('chroot'))).toBe(false);
  });

  it('masked and readonly paths from the request replace the defaults', () => {
    const spec = buildContainerSpec(
      containerInput({
        config: containerConfig({}, { masked_paths: ['/proc/a'], readonly_paths: ['/proc/b'] }),
      }),
    );
    expect(spec.linux.maskedPaths).toEqual(['/proc/a']);
    expect(spec.linux.readonlyPaths).toEqual(['/proc/b']);
  });

  it('readonly rootfs, no_new_privs, sysctls', () => {
    const spec = buildContainerSpec(
      containerInput({
        config: containerConfig({}, { readonly_rootfs: true, no_new_privs: true }),
        sandboxConfig: podConfig({}, {}, { 'net.ipv4.ip_unprivileged_port_start': '0' }),
      }),
    );
    expect(spec.root.readonly).toBe(true);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.linux.sysctl).toEqual({ 'net.ipv4.ip_unprivileged_port_start': '0' });
    expect(spec.mounts.find((m) => m.destination === '/etc/hosts')?.options).toContain('ro');
  });

  it('oom_score_adj is clamped to ours when restricted', () => {
    const withOom = (v: string, own: number, restrict: boolean) =>
      buildContainerSpec(
        containerInput({
          config: containerConfig({}, {}, { oom_score_adj: v }),
          host: { ...containerInput().host, ownOomScoreAdj: own, restrictOomScoreAdj: restrict },
        }),
      ).process.oomScoreAdj;
    expect(withOom('-997', 0, true)).toBe(0);
    expect(withOom('-997', -999, true)).toBe(-997);
    expect(withOom('-997', 0, false)).toBe(-997);
    expect(withOom('1000', 0, true)).toBe(1000);
  });

  it('resources reach linux.resources', () => {
    const spec = buildContainerSpec(
      containerInput({
        config: containerConfig({}, {}, { cpu_shares: '256', memory_limit_in_bytes: '1048576' }),
      }),
    );
    expect(spec.linux.resources).toEqual({
      cpu: { shares: 256 },
      memory: { limit: 1048576, swap: 1048576 },
      devices: [{ allow: false, access: 'rwm' }],
    });
  });

  it('CRI devices with their permissions', () => {
    const config = containerConfig({
      devices: [{ host_path: '/dev/fuse', container_path: '/dev/myfuse', permissions: 'rw' }],
    });
    const devices = {
      '/dev/fuse': { type: 'c' as const, major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    };
    const spec = buildContainerSpec(containerInput({ config, devices }));
    expect(spec.linux.devices).toEqual([
      { path: '/dev/myfuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    ]);
    expect(spec.linux.resources?.devices).toEqual([
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' },
    ]);
    expect(() => buildContainerSpec(containerInput({ config, devices: {} }))).toThrow(/no such device/);
    const bad = containerConfig({
      devices: [{ host_path: '/dev/fuse', container_path: '', permissions: 'rwx' }],
    });
    expect(() => buildContainerSpec(containerInput({ config: bad, devices }))).toThrow(/permissions/);
  });

  it('bidirectional mounts make the rootfs rshared', () => {
    const config = containerConfig({
      mounts: [mount({ container_path: '/m', host_path: '/h', propagation: 'PROPAGATION_BIDIRECTIONAL' })],
    });
    expect(buildContainerSpec(containerInput({ config })).linux.rootfsPropagation).toBe('rshared');
  });

  it('AppArmor absent: unconfined is fine, a profile is refused', () => {
    const aa = (profile_type: 'RuntimeDefault' | 'Unconfined' | 'Localhost') =>
      containerConfig(
        {},
        { apparmor: { profile_type, localhost_ref: profile_type === 'Localhost' ? 'p' : '' } },
      );
    expect(
      buildContainerSpec(containerInput({ config: aa('Unconfined') })).process.apparmorProfile,
    ).toBeUndefined();
    const e = errOf(() => buildContainerSpec(containerInput({ config: aa('RuntimeDefault') })));
    expect(e.code).toBe(Status.FAILED_PRECONDITION);
    expect(e.message).toMatch(/AppArmor is not available/);
    expect(() =>
      buildContainerSpec(
        containerInput({ config: containerConfig({}, { apparmor_profile: 'localhost/x' }) }),
      ),
    ).toThrow(/AppArmor is not available/);
  });

  it('AppArmor present: default and localhost profiles', () => {
    const host = {
      ...containerInput().host,
      appArmorAvailable: true,
      appArmorDefaultProfile: 'berth-default',
    };
    expect(buildContainerSpec(containerInput({ host })).process.apparmorProfile).toBe('berth-default');
    const config = containerConfig(
      {},
      { apparmor: { profile_type: 'Localhost', localhost_ref: 'localhost/my-prof' } },
    );
    expect(buildContainerSpec(containerInput({ host, config })).process.apparmorProfile).toBe('my-prof');
  });

  it('Localhost seccomp uses the profile the caller loaded', () => {
    const config = containerConfig({}, { seccomp: { profile_type: 'Localhost', localhost_ref: '/p.json' } });
    const spec = buildContainerSpec(
      containerInput({
        config,
        seccompProfile: { defaultAction: 'SCMP_ACT_LOG', syscalls: [] },
      }),
    );
    expect(spec.linux.seccomp).toEqual({ defaultAction: 'SCMP_ACT_LOG', syscalls: [] });
  });
});

describe('buildSandboxSpec', () => {
  it('the infra container of a pod', () => {
    const spec = buildSandboxSpec(sandboxInput());
    expect(spec.process.args).toEqual(['/pause']);
    expect(spec.process.capabilities?.bounding).toEqual([]);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.process.oomScoreAdj).toBe(0); // -998 clamped to ours
    expect(spec.root).toEqual({ path: '/run/berth/s1/rootfs', readonly: true });
    expect(spec.hostname).toBe('pod-host');
    expect(spec.linux.namespaces).toEqual([
      { type: 'mount' },
      { type: 'network', path: '/run/berth/netns/s1' },
      { type: 'uts' },
      { type: 'ipc' },
      { type: 'pid' },
    ]);
    expect(spec.linux.resources?.cpu).toEqual({ shares: 2 });
    expect(spec.linux.cgroupsPath).toBe('/berth/berth-s1');
    expect(spec.mounts.find((m) => m.destination === '/dev/shm')?.source).toBe('/pod/shm');
    expect(spec.annotations?.[ANNOTATIONS.containerType]).toBe('sandbox');
    expect(spec.annotations?.[ANNOTATIONS.sandboxLogDirectory]).toBe('/var/log/pods/x');
  });
  it('host network, ipc and pid', () => {
    const config = podConfig(
      {},
      { namespace_options: namespaceOptions({ network: 'NODE', ipc: 'NODE', pid: 'NODE' }) },
    );
    const spec = buildSandboxSpec(sandboxInput({ config, netnsPath: undefined }));
    expect(spec.linux.namespaces).toEqual([{ type: 'mount' }]);
    expect(spec.hostname).toBeUndefined();
    expect(spec.mounts.find((m) => m.destination === '/dev/shm')?.source).toBe('/dev/shm');
  });
  it('pod security context: user, sysctls, seccomp, unrestricted oom', () => {
    const config = podConfig(
      {},
      { seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' } },
      { 'kernel.shm_rmid_forced': '1' },
    );
    const spec = buildSandboxSpec(
      sandboxInput({
        config,
        user: { uid: 65535, gid: 65535, additionalGids: [65535], home: '/' },
        host: { ...sandboxInput().host, restrictOomScoreAdj: false },
      }),
    );
    expect(spec.process.user).toEqual({ uid: 65535, gid: 65535, additionalGids: [65535] });
    expect(spec.linux.sysctl).toEqual({ 'kernel.shm_rmid_forced': '1' });
    expect(spec.linux.seccomp?.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(spec.process.oomScoreAdj).toBe(-998);
  });
  it('needs a netns unless host network', () => {
    expect(errOf(() => buildSandboxSpec(sandboxInput({ netnsPath: undefined }))).code).toBe(
      Status.FAILED_PRECONDITION,
    );
  });
});
