import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hugepageDirToSize, parseCpuList, readResourceHostFacts } from './resource-host';

test('parseCpuList', () => {
  expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
  expect(parseCpuList('')).toEqual([]);
  expect(parseCpuList('3-1')).toBeUndefined();
  expect(parseCpuList('a')).toBeUndefined();
  expect(parseCpuList('0,,1')).toBeUndefined();
});

test('hugepageDirToSize', () => {
  expect(hugepageDirToSize('hugepages-2048kB')).toBe('2MB');
  expect(hugepageDirToSize('hugepages-1048576kB')).toBe('1GB');
  expect(hugepageDirToSize('hugepages-64kB')).toBe('64KB');
  expect(hugepageDirToSize('other')).toBeUndefined();
});

test('readResourceHostFacts reads sysfs and the cgroup root', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-rh-'));
  try {
    const sys = path.join(dir, 'sys');
    fs.mkdirSync(path.join(sys, 'kernel/mm/hugepages/hugepages-2048kB'), { recursive: true });
    fs.mkdirSync(path.join(sys, 'kernel/mm/hugepages/hugepages-1048576kB'), { recursive: true });
    fs.mkdirSync(path.join(sys, 'devices/system/cpu'), { recursive: true });
    fs.writeFileSync(path.join(sys, 'devices/system/cpu/online'), '0-3\n');
    const cg = path.join(dir, 'cg');
    fs.mkdirSync(cg);
    expect(readResourceHostFacts(sys, cg)).toEqual({
      hugepageSizes: expect.arrayContaining(['2MB', '1GB']),
      cpus: [0, 1, 2, 3],
      mems: [0],
      unifiedControllers: null,
    });
    fs.writeFileSync(path.join(cg, 'cgroup.controllers'), 'cpu memory pids\n');
    expect(readResourceHostFacts(sys, cg).unifiedControllers).toEqual(['cgroup', 'cpu', 'memory', 'pids']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
