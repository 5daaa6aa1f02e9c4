import { parseCgroupMounts, parseFlatKeyed, parseNetDev, parseProcCgroup, parseSingle } from './parse';

const HYBRID_MOUNTINFO = `22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

test('flat-keyed files: v1 memory.stat and v2 cpu.stat', () => {
  const m = parseFlatKeyed('cache 9240576\nrss 7634944\ntotal_inactive_file 63610880\nbogus x\n\n');
  expect(m.get('cache')).toBe(9240576n);
  expect(m.get('total_inactive_file')).toBe(63610880n);
  expect(m.has('bogus')).toBe(false);
  const c = parseFlatKeyed('usage_usec 123456789012\nuser_usec 1\nsystem_usec 2\nnr_periods 0\n');
  expect(c.get('usage_usec')).toBe(123456789012n);
});

test('single values, v2 "max" and values past 2^53', () => {
  expect(parseSingle('9223372036854771712\n')).toBe(9223372036854771712n);
  expect(parseSingle('max\n')).toBe('max');
  expect(parseSingle('')).toBeUndefined();
  expect(parseSingle('-1')).toBeUndefined();
});

test('mountinfo: hybrid host, controller per hierarchy', () => {
  const m = parseCgroupMounts(HYBRID_MOUNTINFO);
  expect(m.v2).toBe('/sys/fs/cgroup/unified');
  expect(m.v1.get('cpuacct')).toBe('/sys/fs/cgroup/cpuacct');
  expect(m.v1.get('memory')).toBe('/sys/fs/cgroup/memory');
  expect(m.v1.get('pids')).toBe('/sys/fs/cgroup/pids');
  expect(m.v1.has('name=systemd')).toBe(false);
  expect(m.v1.has('rw')).toBe(false);
});

test('mountinfo: combined cpu,cpuacct hierarchy and pure v2', () => {
  const m = parseCgroupMounts(
    '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n',
  );
  expect(m.v1.get('cpu')).toBe('/sys/fs/cgroup/cpu,cpuacct');
  expect(m.v1.get('cpuacct')).toBe('/sys/fs/cgroup/cpu,cpuacct');
  const v2 = parseCgroupMounts('29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n');
  expect(v2.v2).toBe('/sys/fs/cgroup');
  expect(v2.v1.size).toBe(0);
});

test('/proc/<pid>/cgroup', () => {
  const p = parseProcCgroup(
    '9:name=systemd:/\n4:memory:/berth/berth-abc\n2:cpu,cpuacct:/berth/berth-abc\n0::/berth/berth-abc\n',
  );
  expect(p.v1.get('memory')).toBe('/berth/berth-abc');
  expect(p.v1.get('cpuacct')).toBe('/berth/berth-abc');
  expect(p.v1.get('name=systemd')).toBe('/');
  expect(p.v2).toBe('/berth/berth-abc');
  expect(parseProcCgroup('0::/kubepods.slice/x.scope\n').v2).toBe('/kubepods.slice/x.scope');
});

test('/proc/net/dev', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0: 1234567     890    1    2    0     0          0         0    76543     210    3    4    0     0       0          0
`;
  const d = parseNetDev(text);
  expect(d.map((x) => x.name)).toEqual(['lo', 'eth0']);
  expect(d[1]).toEqual({
    name: 'eth0',
    rxBytes: 1234567n,
    rxPackets: 890n,
    rxErrors: 1n,
    rxDropped: 2n,
    txBytes: 76543n,
    txPackets: 210n,
    txErrors: 3n,
    txDropped: 4n,
  });
  // a counter glued to the colon (wide counters) still parses
  expect(parseNetDev('eth0:123 1 0 0 0 0 0 0 456 2 0 0 0 0 0 0\n')[0].txBytes).toBe(456n);
});
