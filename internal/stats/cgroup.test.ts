import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CgroupReader,
  cpuFromV1,
  cpuFromV2,
  layoutFrom,
  memoryFromV1,
  memoryFromV2,
  sumSamples,
} from './cgroup';

const V1_STAT = `cache 1000
rss 2000
mapped_file 300
pgfault 10
pgmajfault 1
inactive_file 400
total_cache 52428800
total_rss 4096000
total_mapped_file 8192
total_pgfault 5000
total_pgmajfault 7
total_inactive_file 1048576
total_swap 12288
`;

const V2_STAT = `anon 4096000
file 52428800
file_mapped 8192
inactive_file 1048576
active_file 51380224
pgfault 5000
pgmajfault 7
`;

test('layout: hybrid host uses v1 cpuacct/memory/pids, pure v2 uses cgroup2 per enabled controller', () => {
  const hybrid = layoutFrom(
    [
      '33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct',
      '35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
      '39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids',
      '41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
    ].join('\n'),
    'hugetlb\n',
  );
  expect(hybrid).toEqual({
    cpu: { version: 1, mount: '/sys/fs/cgroup/cpuacct' },
    memory: { version: 1, mount: '/sys/fs/cgroup/memory' },
    pids: { version: 1, mount: '/sys/fs/cgroup/pids' },
    // PSI from the unified hierarchy, which has *.pressure in every cgroup
    psi: '/sys/fs/cgroup/unified',
  });
  // v1 only (no cgroup2 mount): no PSI, blkio for I/O
  const v1only = layoutFrom('37 31 0:34 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n', '');
  expect(v1only.psi).toBeUndefined();
  expect(v1only.io).toEqual({ version: 1, mount: '/sys/fs/cgroup/blkio' });
  const v2 = layoutFrom(
    '29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n',
    'cpuset cpu io memory pids\n',
  );
  expect(v2.memory).toEqual({ version: 2, mount: '/sys/fs/cgroup' });
  expect(v2.pids).toEqual({ version: 2, mount: '/sys/fs/cgroup' });
  expect(v2.io).toEqual({ version: 2, mount: '/sys/fs/cgroup' });
  expect(v2.psi).toBe('/sys/fs/cgroup');
  // cpu.stat usage is in every v2 cgroup, memory only where the controller is enabled
  const bare = layoutFrom('41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n', '');
  expect(bare.cpu).toEqual({ version: 2, mount: '/sys/fs/cgroup/unified' });
  expect(bare.memory).toBeUndefined();
});

test('cpu: v1 cpuacct.usage and cpuacct.stat ticks, v2 cpu.stat microseconds', () => {
  expect(cpuFromV1('2500000000\n', 'user 150\nsystem 50\n')).toEqual({
    usageNs: 2500000000n,
    userNs: 1500000000n,
    systemNs: 500000000n,
  });
  expect(cpuFromV1('42\n', undefined)).toEqual({ usageNs: 42n });
  expect(cpuFromV1('', undefined)).toBeUndefined();
  expect(cpuFromV2('usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n')).toEqual({
    usageNs: 2500000000n,
    userNs: 2000000000n,
    systemNs: 500000000n,
  });
  expect(cpuFromV2('nr_periods 0\n')).toBeUndefined();
});

test('memory v1: hierarchical totals, working set = usage − total_inactive_file, unlimited limit dropped', () => {
  const m = memoryFromV1('60000000\n', '9223372036854771712\n', V1_STAT)!;
  expect(m).toEqual({
    usage: 60000000n,
    workingSet: 60000000n - 1048576n,
    rss: 4096000n,
    cache: 52428800n,
    mappedFile: 8192n,
    pageFaults: 5000n,
    majorPageFaults: 7n,
    swap: 12288n,
    limit: undefined,
  });
  expect(memoryFromV1('60000000\n', '104857600\n', V1_STAT)!.limit).toBe(104857600n);
  // inactive_file larger than usage (racy reads) never goes negative
  expect(memoryFromV1('100\n', undefined, V1_STAT)!.workingSet).toBe(0n);
});

test('memory v2: anon as rss, "max" is no limit, swap from memory.swap.current', () => {
  const m = memoryFromV2('60000000\n', 'max\n', V2_STAT, '4096\n')!;
  expect(m.workingSet).toBe(60000000n - 1048576n);
  expect(m.rss).toBe(4096000n);
  expect(m.cache).toBe(52428800n);
  expect(m.limit).toBeUndefined();
  expect(m.swap).toBe(4096n);
  expect(memoryFromV2('1\n', '209715200\n', V2_STAT, undefined)!.limit).toBe(209715200n);
});

test('sumSamples adds counters and drops limits', () => {
  const a = {
    cpu: { usageNs: 10n },
    memory: memoryFromV2('100\n', '1000\n', 'anon 5\n', undefined)!,
    pids: 2n,
  };
  const b = { cpu: { usageNs: 5n, userNs: 3n }, pids: 1n };
  const s = sumSamples([a, b, {}]);
  expect(s.cpu?.usageNs).toBe(15n);
  expect(s.cpu?.userNs).toBe(3n);
  expect(s.memory?.usage).toBe(100n);
  expect(s.memory?.limit).toBeUndefined();
  expect(s.pids).toBe(3n);
  expect(sumSamples([])).toEqual({});
});

describe('CgroupReader over a fake hierarchy', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cg-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const write = (rel: string, text: string): void => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };

  test('v1: reads cpuacct, memory, pids of /berth/berth-x; a missing cgroup gives nothing', async () => {
    write('cpuacct/berth/berth-x/cpuacct.usage', '777\n');
    write('cpuacct/berth/berth-x/cpuacct.stat', 'user 1\nsystem 2\n');
    write('memory/berth/berth-x/memory.usage_in_bytes', '5000\n');
    write('memory/berth/berth-x/memory.limit_in_bytes', '8000\n');
    write('memory/berth/berth-x/memory.stat', 'total_inactive_file 1000\ntotal_rss 3000\n');
    write('pids/berth/berth-x/pids.current', '3\n');
    const r = new CgroupReader({
      cpu: { version: 1, mount: path.join(root, 'cpuacct') },
      memory: { version: 1, mount: path.join(root, 'memory') },
      pids: { version: 1, mount: path.join(root, 'pids') },
    });
    const s = await r.read('/berth/berth-x', { detail: true });
    expect(s.cpu).toEqual({ usageNs: 777n, userNs: 10_000_000n, systemNs: 20_000_000n });
    expect(s.memory?.workingSet).toBe(4000n);
    expect(s.memory?.limit).toBe(8000n);
    expect(s.pids).toBe(3n);
    expect(await r.read('/berth/gone')).toEqual({ cpu: undefined, memory: undefined, pids: undefined });
  });

  test('v2 without a pids controller counts cgroup.procs; pathOfPid reads /proc/<pid>/cgroup', async () => {
    write('v2/pod/cpu.stat', 'usage_usec 3\n');
    write('v2/pod/memory.current', '10\n');
    write('v2/pod/memory.max', 'max\n');
    write('v2/pod/memory.stat', 'anon 4\ninactive_file 2\n');
    write('v2/pod/cgroup.procs', '11\n12\n13\n');
    write('proc/42/cgroup', '0::/pod\n');
    const r = new CgroupReader({
      cpu: { version: 2, mount: path.join(root, 'v2') },
      memory: { version: 2, mount: path.join(root, 'v2') },
    });
    const s = await r.read('/pod');
    expect(s.cpu?.usageNs).toBe(3000n);
    expect(s.memory?.workingSet).toBe(8n);
    expect(s.memory?.swap).toBeUndefined();
    expect(s.pids).toBe(3n);
    expect(await r.pathOfPid(42, path.join(root, 'proc'))).toBe('/pod');
    expect(await r.pathOfPid(43, path.join(root, 'proc'))).toBeUndefined();
  });
});
