import { Status } from '../errors';
import { buildMounts, sortMounts, type MountOptions, type MountResult } from './mounts';
import { mount } from './test-fixtures';

const base = (o: Partial<MountOptions> = {}): MountOptions => ({
  criMounts: [],
  podFiles: {
    hostname: '/pod/hostname',
    hosts: '/pod/hosts',
    resolvConf: '/pod/resolv.conf',
    shm: '/pod/shm',
  },
  privileged: false,
  readonlyRootfs: false,
  rroSupported: true,
  ...o,
});
const byDest = (r: MountResult, d: string) => r.mounts.find((m) => m.destination === d);

describe('buildMounts', () => {
  it('default mounts with read-only sysfs and cgroupfs, pod files rw, pod shm', () => {
    const r = buildMounts(base());
    expect(r.mounts.map((m) => m.destination)).toEqual([
      '/proc',
      '/dev',
      '/sys',
      '/dev/pts',
      '/dev/shm',
      '/dev/mqueue',
      '/etc/hostname',
      '/etc/hosts',
      '/etc/resolv.conf',
      '/sys/fs/cgroup',
    ]);
    expect(byDest(r, '/sys')).toMatchObject({ type: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    expect(byDest(r, '/sys/fs/cgroup')?.options).toContain('ro');
    expect(byDest(r, '/dev/shm')).toEqual({
      destination: '/dev/shm',
      type: 'bind',
      source: '/pod/shm',
      options: ['rbind', 'rprivate', 'rw'],
    });
    expect(byDest(r, '/etc/hosts')).toEqual({
      destination: '/etc/hosts',
      type: 'bind',
      source: '/pod/hosts',
      options: ['rbind', 'rprivate', 'rw'],
    });
    expect(r.rootfsPropagation).toBeUndefined();
  });
  it('privileged: writable sysfs and cgroupfs', () => {
    const r = buildMounts(base({ privileged: true }));
    expect(byDest(r, '/sys')?.options).toContain('rw');
    expect(byDest(r, '/sys')?.options).not.toContain('ro');
    expect(byDest(r, '/sys/fs/cgroup')?.options).toContain('rw');
  });
  it('readonly rootfs makes the pod files read-only (containerd), not /dev/shm', () => {
    const r = buildMounts(base({ readonlyRootfs: true }));
    expect(byDest(r, '/etc/resolv.conf')?.options).toContain('ro');
    expect(byDest(r, '/etc/hostname')?.options).toContain('ro');
    expect(byDest(r, '/dev/shm')?.options).toContain('rw');
  });
  it('host IPC uses the host /dev/shm; no pod shm gives a private tmpfs', () => {
    expect(byDest(buildMounts(base({ ipcMode: 'NODE' })), '/dev/shm')?.source).toBe('/dev/shm');
    expect(byDest(buildMounts(base({ podFiles: {} })), '/dev/shm')).toMatchObject({
      type: 'tmpfs',
      source: 'shm',
    });
  });
  it('CRI mounts: readonly, propagation, rootfs propagation', () => {
    const r = buildMounts(
      base({
        criMounts: [
          mount({ container_path: '/data', host_path: '/h/data', readonly: true }),
          mount({
            container_path: '/slave',
            host_path: '/h/s',
            propagation: 'PROPAGATION_HOST_TO_CONTAINER',
          }),
        ],
      }),
    );
    expect(byDest(r, '/data')).toEqual({
      destination: '/data',
      type: 'bind',
      source: '/h/data',
      options: ['rbind', 'rprivate', 'ro'],
    });
    expect(byDest(r, '/slave')?.options).toEqual(['rbind', 'rslave', 'rw']);
    expect(r.rootfsPropagation).toBe('rslave');
    const shared = buildMounts(
      base({
        criMounts: [
          mount({ container_path: '/b', host_path: '/h/b', propagation: 'PROPAGATION_BIDIRECTIONAL' }),
          mount({ container_path: '/s', host_path: '/h/s', propagation: 'PROPAGATION_HOST_TO_CONTAINER' }),
        ],
      }),
    );
    expect(byDest(shared, '/b')?.options).toEqual(['rbind', 'rshared', 'rw']);
    expect(shared.rootfsPropagation).toBe('rshared');
  });
  it('checks host propagation when known', () => {
    const m = mount({ container_path: '/b', host_path: '/h/b', propagation: 'PROPAGATION_BIDIRECTIONAL' });
    expect(() =>
      buildMounts(base({ criMounts: [m], sources: { '/h/b': { realPath: '/h/b', propagation: 'slave' } } })),
    ).toThrow(/not on a shared mount/);
    const s = mount({
      container_path: '/s',
      host_path: '/h/s',
      propagation: 'PROPAGATION_HOST_TO_CONTAINER',
    });
    expect(() =>
      buildMounts(
        base({ criMounts: [s], sources: { '/h/s': { realPath: '/h/s', propagation: 'private' } } }),
      ),
    ).toThrow(/shared or slave/);
  });
  it('recursive read-only', () => {
    const m = mount({ container_path: '/r', host_path: '/h/r', readonly: true, recursive_read_only: true });
    expect(byDest(buildMounts(base({ criMounts: [m] })), '/r')?.options).toEqual([
      'rbind',
      'rprivate',
      'rro',
    ]);
    expect(() => buildMounts(base({ criMounts: [m], rroSupported: false }))).toThrow(
      /not supported by the runtime/,
    );
    expect(() => buildMounts(base({ criMounts: [{ ...m, readonly: false }] }))).toThrow(/needs readonly/);
    expect(() =>
      buildMounts(base({ criMounts: [{ ...m, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }] })),
    ).toThrow(/private/);
  });
  it('refuses relative container paths, a missing host path, an unprepared image volume', () => {
    const rel = mount({ container_path: 'data', host_path: '/h' });
    expect(() => buildMounts(base({ criMounts: [rel] }))).toThrow(/absolute/);
    const m = mount({ container_path: '/data', host_path: '/nope' });
    try {
      buildMounts(base({ criMounts: [m], sources: { '/nope': null } }));
      throw new Error('no error');
    } catch (err) {
      expect((err as { code: number }).code).toBe(Status.INVALID_ARGUMENT);
      expect((err as Error).message).toMatch(/host path \/nope does not exist/);
    }
    expect(() => buildMounts(base({ criMounts: [m], sources: {} }))).toThrow(/does not exist/);
    const img = mount({
      container_path: '/i',
      host_path: '/h',
      image: { image: 'x', annotations: {}, user_specified_image: '', runtime_handler: '', image_ref: '' },
    });
    expect(() => buildMounts(base({ criMounts: [img] }))).toThrow(/image volume x was not prepared/);
    const opt = mount({ container_path: '/o', host_path: '/h', mount_options: ['size=1m'] });
    expect(() => buildMounts(base({ criMounts: [opt] }))).toThrow(
      /mount \/o: mount option size=1m is not supported/,
    );
  });
  it('mount_options: bind options are applied after ro/rw; ro and rro make the mount read-only', () => {
    const m = mount({
      container_path: '/o',
      host_path: '/h',
      mount_options: ['noexec', 'nosuid', 'noatime'],
    });
    expect(byDest(buildMounts(base({ criMounts: [m] })), '/o')?.options).toEqual([
      'rbind',
      'rprivate',
      'rw',
      'noexec',
      'nosuid',
      'noatime',
    ]);
    const ro = mount({ container_path: '/o', host_path: '/h', mount_options: ['ro', 'nodev'] });
    expect(byDest(buildMounts(base({ criMounts: [ro] })), '/o')?.options).toEqual([
      'rbind',
      'rprivate',
      'ro',
      'nodev',
    ]);
    const rro = mount({ container_path: '/o', host_path: '/h', mount_options: ['rro'] });
    expect(
      byDest(buildMounts(base({ criMounts: [rro], runtimeMountOptions: ['rro'] })), '/o')?.options,
    ).toEqual(['rbind', 'rprivate', 'rro']);
    expect(() => buildMounts(base({ criMounts: [rro] }))).toThrow(
      /mount option rro is not supported by the runtime/,
    );
    const bad = mount({ container_path: '/o', host_path: '/h', readonly: true, mount_options: ['rw'] });
    try {
      buildMounts(base({ criMounts: [bad] }));
      throw new Error('no error');
    } catch (err) {
      expect((err as { code: number }).code).toBe(Status.INVALID_ARGUMENT);
      expect((err as Error).message).toMatch(/mount option rw contradicts readonly/);
    }
  });
  it('sysfsFromHost: /sys is a read-only rbind of the host /sys (rro where supported)', () => {
    const sys = (o: Partial<MountOptions>) =>
      byDest(buildMounts(base({ sysfsFromHost: true, ...o })), '/sys');
    expect(sys({})).toEqual({
      destination: '/sys',
      type: 'bind',
      source: '/sys',
      options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev', 'rro'],
    });
    expect(sys({ rroSupported: false })?.options).toContain('ro');
    expect(byDest(buildMounts(base()), '/sys')?.type).toBe('sysfs');
  });
  it('binds an image volume read-only and private from its prepared dir, whatever was asked', () => {
    const image = {
      image: 'img',
      annotations: {},
      user_specified_image: '',
      runtime_handler: '',
      image_ref: '',
    };
    const vol = mount({
      container_path: '/vol/',
      host_path: '',
      image,
      image_sub_path: 'sub',
      readonly: false,
      propagation: 'PROPAGATION_BIDIRECTIONAL',
    });
    const plain = mount({ container_path: '/data', host_path: '/h' });
    const r = buildMounts(base({ criMounts: [plain, vol], imageSources: { 1: '/run/b/imgvol/1/sub' } }));
    expect(byDest(r, '/vol')).toEqual({
      destination: '/vol',
      type: 'bind',
      source: '/run/b/imgvol/1/sub',
      options: ['rbind', 'rprivate', 'ro'],
    });
    expect(r.rootfsPropagation).toBeUndefined();
    // accepted mount options apply to image volumes too (still read-only); others are refused
    const opt = { ...vol, mount_options: ['noexec'] };
    expect(
      byDest(buildMounts(base({ criMounts: [opt], imageSources: { 0: '/x' } })), '/vol')?.options,
    ).toEqual(['rbind', 'rprivate', 'ro', 'noexec']);
    const fsOpt = { ...vol, mount_options: ['size=1m'] };
    expect(() => buildMounts(base({ criMounts: [fsOpt], imageSources: { 0: '/x' } }))).toThrow(
      /mount option size=1m/,
    );
    const mapped = { ...vol, uidMappings: [{ container_id: 0, host_id: 1000, length: 1 }] };
    expect(() => buildMounts(base({ criMounts: [mapped], imageSources: { 0: '/x' } }))).toThrow(/id-mapped/);
    // a sub-path without an image is a mistake, not a plain bind
    const stray = mount({ container_path: '/s', host_path: '/h', image_sub_path: 'x' });
    expect(() => buildMounts(base({ criMounts: [stray] }))).toThrow(/image_sub_path is set but image is not/);
  });
  it('uses the resolved real path as source', () => {
    const m = mount({ container_path: '/data', host_path: '/link' });
    expect(
      byDest(buildMounts(base({ criMounts: [m], sources: { '/link': { realPath: '/real' } } })), '/data')
        ?.source,
    ).toBe('/real');
  });
  it('CRI mounts override defaults and pod files at the same destination; /dev replaces /dev/*', () => {
    const r = buildMounts(
      base({
        criMounts: [
          mount({ container_path: '/etc/hosts', host_path: '/kubelet/hosts' }),
          mount({ container_path: '/dev/shm/', host_path: '/my/shm' }),
        ],
      }),
    );
    expect(r.mounts.filter((m) => m.destination === '/etc/hosts')).toEqual([
      {
        destination: '/etc/hosts',
        type: 'bind',
        source: '/kubelet/hosts',
        options: ['rbind', 'rprivate', 'rw'],
      },
    ]);
    expect(r.mounts.filter((m) => m.destination === '/dev/shm').map((m) => m.source)).toEqual(['/my/shm']);
    const dev = buildMounts(base({ criMounts: [mount({ container_path: '/dev', host_path: '/dev' })] }));
    expect(dev.mounts.filter((m) => m.destination.startsWith('/dev')).map((m) => m.destination)).toEqual([
      '/dev',
    ]);
  });
  it('sorts parents before children, stable otherwise', () => {
    const sorted = sortMounts([
      { destination: '/a/b/c' },
      { destination: '/x' },
      { destination: '/a/b' },
      { destination: '/a' },
      { destination: '/y' },
    ]);
    expect(sorted.map((m) => m.destination)).toEqual(['/x', '/a', '/y', '/a/b', '/a/b/c']);
  });
});
