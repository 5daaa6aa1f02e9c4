import { buildResources, cgroupsPathFor, clampOomScoreAdj, int64 } from './resources';
import { resources } from './test-fixtures';

const opts = { swapSupported: true, hugetlbSupported: true };

describe('buildResources', () => {
  it('nothing set → nothing', () => {
    expect(buildResources(resources(), opts)).toEqual({});
    expect(buildResources(null, opts)).toEqual({});
  });
  it('cpu, cpuset, memory with swap = memory', () => {
    const r = buildResources(
      resources({
        cpu_shares: '512',
        cpu_quota: '50000',
        cpu_period: '100000',
        cpuset_cpus: '0-1',
        cpuset_mems: '0',
        memory_limit_in_bytes: '67108864',
      }),
      opts,
    );
    expect(r).toEqual({
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0-1', mems: '0' },
      memory: { limit: 67108864, swap: 67108864 },
    });
  });
  it('requested swap wins; no swap accounting → no swap field', () => {
    expect(
      buildResources(resources({ memory_limit_in_bytes: '100', memory_swap_limit_in_bytes: '300' }), opts)
        .memory,
    ).toEqual({
      limit: 100,
      swap: 300,
    });
    expect(
      buildResources(resources({ memory_limit_in_bytes: '100' }), { ...opts, swapSupported: false }).memory,
    ).toEqual({ limit: 100 });
  });
  it('hugepages (dropped without the controller) and unified', () => {
    const r = resources({
      hugepage_limits: [{ page_size: '2MB', limit: '4194304' }],
      unified: { 'memory.high': '1000000' },
    });
    expect(buildResources(r, opts)).toEqual({
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
      unified: { 'memory.high': '1000000' },
    });
    expect(buildResources(r, { ...opts, hugetlbSupported: false }).hugepageLimits).toBeUndefined();
    expect(() => buildResources(resources({ unified: { '../x': '1' } }), opts)).toThrow(/invalid key/);
  });
  it('refuses what runc or the kernel would refuse, takes the edges', () => {
    const host = {
      hugepageSizes: ['2MB'],
      cpus: [0, 1],
      mems: [0],
      unifiedControllers: ['cgroup', 'memory'],
    };
    const o = { ...opts, host };
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ cpu_shares: '262145' }, /cpu_shares 262145 is outside 2\.\.262144/],
      [{ cpu_shares: '1' }, /cpu_shares 1/],
      [{ cpu_shares: '-3' }, /cpu_shares -3/],
      [{ cpu_quota: '999' }, /cpu_quota 999/],
      [{ cpu_quota: '-2' }, /cpu_quota -2/],
      [{ cpu_period: '999' }, /cpu_period 999/],
      [{ cpu_period: '1000001' }, /cpu_period 1000001/],
      [{ cpuset_cpus: '0-x' }, /cpuset_cpus/],
      [{ cpuset_cpus: '1-3' }, /cpuset_cpus: 1-3 names 2,3/],
      [{ cpuset_mems: '1' }, /cpuset_mems/],
      [{ oom_score_adj: '1001' }, /oom_score_adj/],
      [{ memory_limit_in_bytes: '100', memory_swap_limit_in_bytes: '50' }, /below memory_limit_in_bytes/],
      [{ memory_swap_limit_in_bytes: '50' }, /without memory_limit_in_bytes/],
      [{ memory_limit_in_bytes: '100', memory_swap_limit_in_bytes: '-2' }, /memory_swap_limit_in_bytes -2/],
      [
        { hugepage_limits: [{ page_size: '1GB', limit: '0' }] },
        /page_size 1GB is not a hugepage size of this host \(2MB\)/,
      ],
      [{ hugepage_limits: [{ page_size: '2MB', limit: '-1' }] }, /negative/],
      [{ unified: { 'pids.max': '10' } }, /controller pids is not available/],
      [{ unified: { 'memory.high ': '10' } }, /invalid key/],
    ];
    for (const [r, why] of bad) {
      expect(() => buildResources(resources(r), o)).toThrow(why);
    }
    expect(() =>
      buildResources(resources({ unified: { 'memory.high': '1' } }), {
        ...o,
        host: { ...host, unifiedControllers: null },
      }),
    ).toThrow(/no cgroup v2/);
    expect(
      buildResources(
        resources({
          cpu_shares: '262144',
          cpu_quota: '-1',
          cpu_period: '1000000',
          cpuset_cpus: '0-1',
          memory_limit_in_bytes: '100',
          memory_swap_limit_in_bytes: '-1',
        }),
        o,
      ),
    ).toEqual({
      cpu: { shares: 262144, quota: -1, period: 1000000, cpus: '0-1' },
      memory: { limit: 100, swap: -1 },
    });
    expect(
      buildResources(resources({ cpu_shares: '2', cpu_quota: '1000', cpu_period: '1000' }), o).cpu,
    ).toEqual({
      shares: 2,
      quota: 1000,
      period: 1000,
    });
  });
  it('refuses junk numbers', () => {
    expect(() => buildResources(resources({ cpu_shares: 'abc' }), opts)).toThrow(/cpu_shares/);
    expect(() => int64('99999999999999999999', 'x')).toThrow(/out of range/);
  });
});

describe('clampOomScoreAdj', () => {
  it('raises values below our own when restricted', () => {
    expect(clampOomScoreAdj(-998, 0, true)).toBe(0);
    expect(clampOomScoreAdj(-998, -500, true)).toBe(-500);
    expect(clampOomScoreAdj(500, 0, true)).toBe(500);
    expect(clampOomScoreAdj(-998, 0, false)).toBe(-998);
    expect(() => clampOomScoreAdj(1001, 0, true)).toThrow(/-1000..1000/);
  });
});

describe('cgroupsPathFor', () => {
  it('cgroupfs and systemd forms', () => {
    expect(cgroupsPathFor('cgroupfs', '/kubepods/burstable/podabc', 'c1')).toBe(
      '/kubepods/burstable/podabc/berth-c1',
    );
    expect(cgroupsPathFor('cgroupfs', 'kubepods/', 'c1')).toBe('/kubepods/berth-c1');
    expect(cgroupsPathFor('cgroupfs', '', 'c1')).toBe('/berth/berth-c1');
    expect(cgroupsPathFor('systemd', 'kubepods-burstable-podabc.slice', 'c1')).toBe(
      'kubepods-burstable-podabc.slice:berth:c1',
    );
    expect(cgroupsPathFor('systemd', '', 'c1')).toBe('system.slice:berth:c1');
    expect(() => cgroupsPathFor('systemd', '/kubepods', 'c1')).toThrow(/slice/);
    expect(() => cgroupsPathFor('cgroupfs', '/a/../b', 'c1')).toThrow(/\.\./);
    expect(() => cgroupsPathFor('cgroupfs', '/a', '../x')).toThrow(/invalid container id/);
  });
});
