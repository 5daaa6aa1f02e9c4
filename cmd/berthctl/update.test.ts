import { parseMemory, resourcesFromFlags } from './update';

describe('parseMemory', () => {
  it("takes bytes and docker's units (binary)", () => {
    expect(parseMemory('1048576')).toBe(1048576);
    expect(parseMemory('512k')).toBe(512 * 1024);
    expect(parseMemory('64m')).toBe(64 * 1024 * 1024);
    expect(parseMemory('64MiB')).toBe(64 * 1024 * 1024);
    expect(parseMemory('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseMemory('2GB')).toBe(2 * 1024 ** 3);
  });
  it('refuses what is not a size', () => {
    for (const v of ['', 'lots', '-1m', '10x', 'm'])
      expect(() => parseMemory(v)).toThrow('--memory wants bytes');
  });
});

describe('resourcesFromFlags', () => {
  it('sets only what was given', () => {
    expect(resourcesFromFlags({})).toEqual({});
    expect(resourcesFromFlags({ 'cpu-shares': '512', memory: '128m' })).toEqual({
      cpu_shares: 512,
      memory_limit_in_bytes: 128 * 1024 * 1024,
    });
    expect(
      resourcesFromFlags({
        'cpu-quota': '-1',
        'cpu-period': '100000',
        'cpuset-cpus': '0-1',
        'cpuset-mems': '0',
      }),
    ).toEqual({ cpu_quota: -1, cpu_period: 100000, cpuset_cpus: '0-1', cpuset_mems: '0' });
  });
  it('refuses bad numbers', () => {
    expect(() => resourcesFromFlags({ 'cpu-shares': '-2' })).toThrow(
      '--cpu-shares wants a non-negative integer',
    );
    expect(() => resourcesFromFlags({ 'cpu-quota': '1.5' })).toThrow('--cpu-quota wants an integer');
  });
});
