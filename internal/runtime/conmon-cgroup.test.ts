import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  cgroupHierarchies,
  conmonCgroupfsPath,
  moveToCgroupfs,
  podCgroupDir,
  sliceOf,
  startScopeArgs,
} from './conmon-cgroup';
import { expandSlice, kubeletSliceName, systemdDriverRefusal } from './cgroup-driver';
import { cgroupsPathFor } from '../oci/resources';

const HYBRID = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 80 0:31 /kubepods /host/memory rw,relatime - cgroup cgroup rw,memory`;

describe('conmon cgroup', () => {
  it('lists every hierarchy mounted at its root, named ones included', () => {
    expect(cgroupHierarchies(HYBRID)).toEqual([
      { mount: '/sys/fs/cgroup/cpu,cpuacct', version: 1, controllers: ['cpu', 'cpuacct'] },
      { mount: '/sys/fs/cgroup/cpuset', version: 1, controllers: ['cpuset'] },
      { mount: '/sys/fs/cgroup/memory', version: 1, controllers: ['memory'] },
      { mount: '/sys/fs/cgroup/systemd', version: 1, controllers: ['name=systemd'] },
      { mount: '/sys/fs/cgroup/unified', version: 2, controllers: [] },
    ]);
    const v2 = '25 1 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate';
    expect(cgroupHierarchies(v2)).toEqual([{ mount: '/sys/fs/cgroup', version: 2, controllers: [] }]);
  });

  it('puts conmon in a leaf beside the containers of the pod, or under the configured cgroup', () => {
    const ctr = cgroupsPathFor('cgroupfs', '/kubepods/besteffort/pod1', 'c1');
    expect(podCgroupDir(ctr)).toBe('/kubepods/besteffort/pod1');
    expect(conmonCgroupfsPath('pod', ctr, 'c1')).toBe('/kubepods/besteffort/pod1/berth-conmon-c1');
    expect(conmonCgroupfsPath('/system/berth-conmon', ctr, 'c1')).toBe(
      '/system/berth-conmon/berth-conmon-c1',
    );
    // no cgroup_parent: the containers' default parent /berth
    expect(conmonCgroupfsPath('pod', cgroupsPathFor('cgroupfs', '', 'c2'), 'c2')).toBe(
      '/berth/berth-conmon-c2',
    );
  });

  it('systemd: a transient scope in the pod slice, started over D-Bus', () => {
    const ctr = cgroupsPathFor('systemd', 'kubepods-besteffort-pod1.slice', 'c1');
    expect(sliceOf(ctr)).toBe('kubepods-besteffort-pod1.slice');
    expect(startScopeArgs('berth-conmon-c1.scope', 'kubepods-besteffort-pod1.slice', 42)).toEqual([
      'call',
      '--system',
      'org.freedesktop.systemd1',
      '/org/freedesktop/systemd1',
      'org.freedesktop.systemd1.Manager',
      'StartTransientUnit',
      'ssa(sv)a(sa(sv))',
      'berth-conmon-c1.scope',
      'fail',
      '3',
      'PIDs',
      'au',
      '1',
      '42',
      'Slice',
      's',
      'kubepods-besteffort-pod1.slice',
      'Description',
      's',
      'berth conmon c1',
      '0',
    ]);
  });
});

describe('systemd cgroup driver', () => {
  it('is refused without systemd as PID 1, with a message naming what runs instead', () => {
    expect(systemdDriverRefusal({ pid1: 'systemd', systemdRunDir: true })).toBeUndefined();
    expect(systemdDriverRefusal({ pid1: 'process_api', systemdRunDir: false })).toBe(
      '"systemd" needs systemd as PID 1, but PID 1 is "process_api", /run/systemd/system does not exist; ' +
        'set runtime.cgroup_driver = "cgroupfs" (and kubelet\'s cgroupDriver: cgroupfs)',
    );
    expect(systemdDriverRefusal({ pid1: 'systemd', systemdRunDir: false })).toMatch(/does not exist/);
    expect(systemdDriverRefusal({ pid1: '', systemdRunDir: true })).toMatch(/PID 1 is unknown/);
  });

  it('takes the slices kubelet builds as cgroup_parent; runc gets slice:berth:id', () => {
    // kubelet (cgroupDriver: systemd) turns /kubepods/besteffort/pod<uid> into this name
    const uid = '8d3c-4a1f-9e2b';
    const parent = kubeletSliceName(['kubepods', 'besteffort', `pod${uid}`]);
    expect(parent).toBe('kubepods-besteffort-pod8d3c_4a1f_9e2b.slice');
    expect(cgroupsPathFor('systemd', parent, 'abc')).toBe(
      'kubepods-besteffort-pod8d3c_4a1f_9e2b.slice:berth:abc',
    );
    expect(kubeletSliceName(['kubepods', 'burstable'])).toBe('kubepods-burstable.slice');
    expect(cgroupsPathFor('systemd', '', 'abc')).toBe('system.slice:berth:abc');
    // a cgroupfs-style parent from a kubelet on the other driver is the caller's mistake
    expect(() => cgroupsPathFor('systemd', '/kubepods/besteffort/pod1', 'abc')).toThrow(
      /not a systemd slice/,
    );
    // where systemd puts that slice in the cgroup tree
    expect(expandSlice(parent)).toBe(
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod8d3c_4a1f_9e2b.slice',
    );
    expect(expandSlice('-.slice')).toBe('/');
  });
});

test('moveToCgroupfs writes the pid into every hierarchy, and names the one that refused after trying all', async () => {
  // plain dirs stand in for the hierarchies: the writes are what is checked here (a real move is in
  // test/integration/metrics-cgroups.test.ts)
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-cg-'));
  try {
    const mounts = ['a', 'b', 'c'].map((n) => path.join(root, n));
    for (const m of mounts) await fsp.mkdir(m);
    const hs = mounts.map((mount) => ({ mount, version: 2 as const, controllers: [] }));
    await moveToCgroupfs(4242, '/pod1/berth-conmon-x', hs);
    for (const m of mounts) {
      expect(await fsp.readFile(path.join(m, 'pod1/berth-conmon-x/cgroup.procs'), 'utf8')).toBe('4242');
    }
    const blocked = path.join(root, 'file');
    await fsp.writeFile(blocked, ''); // a file where a hierarchy should be: mkdir under it fails
    const d = path.join(root, 'd');
    await fsp.mkdir(d);
    const bad = [
      ...hs,
      { mount: blocked, version: 2 as const, controllers: [] },
      { mount: d, version: 2 as const, controllers: [] },
    ];
    await expect(moveToCgroupfs(7, '/pod2', bad)).rejects.toThrow(
      `cannot move conmon 7 into ${blocked}/pod2:`,
    );
    expect(await fsp.readFile(path.join(d, 'pod2/cgroup.procs'), 'utf8')).toBe('7'); // the others still done
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});
