import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  idInside,
  OVERFLOW_ID,
  parseIdMap,
  parseStatusUser,
  readProcessUser,
  userInside,
} from './process-user';

const STATUS = [
  'Name:\tsleep',
  'Umask:\t0022',
  'State:\tS (sleeping)',
  'Uid:\t1000\t1000\t1000\t1000',
  'Gid:\t1000\t1000\t1000\t1000',
  'FDSize:\t64',
  'Groups:\t50 1000 4242 ',
  'NStgid:\t7',
  '',
].join('\n');

describe('parseStatusUser', () => {
  it('reads the real uid and gid and the supplementary groups', () => {
    expect(parseStatusUser(STATUS)).toEqual({ uid: 1000, gid: 1000, additionalGids: [50, 1000, 4242] });
  });
  it('an empty Groups line is no supplementary group', () => {
    const s = STATUS.replace('Groups:\t50 1000 4242 ', 'Groups:\t');
    expect(parseStatusUser(s)?.additionalGids).toEqual([]);
  });
  it('the real id, not the effective one', () => {
    expect(parseStatusUser(STATUS.replace('Uid:\t1000\t1000', 'Uid:\t7\t0'))?.uid).toBe(7);
  });
  it('undefined when a line is missing or garbled', () => {
    expect(parseStatusUser(STATUS.replace(/^Groups:.*$/m, ''))).toBeUndefined();
    expect(parseStatusUser(STATUS.replace(/^Uid:.*$/m, 'Uid:\tx'))).toBeUndefined();
    expect(parseStatusUser('')).toBeUndefined();
  });
});

describe('id maps', () => {
  const map = parseIdMap('         0     100000      65536\n     65536          0          1\n');
  it('parses uid_map lines', () => {
    expect(map).toEqual([
      { inside: 0, outside: 100000, length: 65536 },
      { inside: 65536, outside: 0, length: 1 },
    ]);
  });
  it('maps an outside id to the inside one; unmapped ids are the overflow id', () => {
    expect(idInside(101000, map)).toBe(1000);
    expect(idInside(100000, map)).toBe(0);
    expect(idInside(0, map)).toBe(65536);
    expect(idInside(165536, map)).toBe(OVERFLOW_ID);
  });
  it('userInside leaves the initial namespace alone and translates a pod user namespace', () => {
    const initial = parseIdMap('         0          0 4294967295\n');
    const u = { uid: 101000, gid: 101000, additionalGids: [100050, 101000] };
    expect(userInside(u, initial, initial)).toEqual(u);
    expect(userInside(u, map, map)).toEqual({ uid: 1000, gid: 1000, additionalGids: [50, 1000] });
  });
});

describe('readProcessUser', () => {
  it('reads this process (the initial user namespace)', async () => {
    const u = await readProcessUser(process.pid);
    expect(u.uid).toBe(process.getuid!());
    expect(u.gid).toBe(process.getgid!());
    // Node's getgroups() adds the effective gid when setgroups left it out
    for (const g of u.additionalGids) expect(process.getgroups!()).toContain(g);
  });
  it('reads a /proc-like tree and translates through its maps', async () => {
    const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-procuser-'));
    try {
      await fsp.mkdir(path.join(root, '42'));
      await fsp.writeFile(
        path.join(root, '42', 'status'),
        STATUS.replace(/1000/g, '101000').replace('50 ', '100050 '),
      );
      await fsp.writeFile(path.join(root, '42', 'uid_map'), '0 100000 65536\n');
      await fsp.writeFile(path.join(root, '42', 'gid_map'), '0 100000 65536\n');
      expect(await readProcessUser(42, root)).toEqual({
        uid: 1000,
        gid: 1000,
        additionalGids: [50, 1000, OVERFLOW_ID], // 4242 has no mapping
      });
      await expect(readProcessUser(43, root)).rejects.toThrow();
    } finally {
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});
