import { Status } from '../errors';
import { parseGroup, parsePasswd, resolveUser, userRequestFrom } from './user';
import { containerSecurity } from './test-fixtures';

const passwd = Buffer.from(
  [
    '# comment',
    'root:x:0:0:root:/root:/bin/sh',
    'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
    'app:x:1000:1001:App:/home/app:/bin/sh',
    'broken line',
    'web:x:33:33::/var/www:',
    '',
  ].join('\n'),
);
const group = Buffer.from(
  [
    'root:x:0:',
    'daemon:x:1:',
    'appgrp:x:1001:',
    'wheel:x:10:root,app',
    'audio:x:29:app',
    'staff:x:50:web',
    'video:x:44:',
  ].join('\n'),
);
const files = { passwd, group };

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: number }).code;
  }
  return undefined;
}

describe('parsePasswd / parseGroup', () => {
  it('skips comments and malformed lines', () => {
    expect(parsePasswd(passwd).map((p) => p.name)).toEqual(['root', 'daemon', 'app', 'web']);
    expect(parsePasswd(undefined)).toEqual([]);
    expect(parseGroup(group).find((g) => g.name === 'wheel')?.members).toEqual(['root', 'app']);
  });
});

describe('resolveUser from the image User', () => {
  it.each([
    ['', 0, 0, [0, 10], '/root'],
    ['app', 1000, 1001, [1001, 10, 29], '/home/app'],
    ['1000', 1000, 1001, [1001, 10, 29], '/home/app'],
    ['1000:44', 1000, 44, [44, 10, 29], '/home/app'],
    ['app:video', 1000, 44, [44, 10, 29], '/home/app'],
    ['1000:video', 1000, 44, [44, 10, 29], '/home/app'],
    ['app:7', 1000, 7, [7, 10, 29], '/home/app'],
    ['4242', 4242, 0, [0], '/'],
    ['4242:4243', 4242, 4243, [4243], '/'],
    ['web', 33, 33, [33, 50], '/var/www'],
  ])('%p → uid %p gid %p groups %p', (user, uid, gid, groups, home) => {
    const r = resolveUser({ imageUser: user }, files);
    expect(r).toMatchObject({ uid, gid, home });
    expect(r.additionalGids).toEqual(groups);
  });

  it('refuses unknown names with the name in the message', () => {
    expect(() => resolveUser({ imageUser: 'nobody' }, files)).toThrow(/user "?nobody"? not found/);
    expect(code(() => resolveUser({ imageUser: 'nobody' }, files))).toBe(Status.INVALID_ARGUMENT);
    expect(() => resolveUser({ imageUser: 'app:nogroup' }, files)).toThrow(/group nogroup not found/);
    expect(() => resolveUser({ imageUser: 'app' }, {})).toThrow(/has no \/etc\/passwd/);
  });

  it('a numeric uid needs no passwd at all', () => {
    expect(resolveUser({ imageUser: '123:456' }, {})).toEqual({
      uid: 123,
      gid: 456,
      additionalGids: [456],
      home: '/',
      username: undefined,
    });
  });
});

describe('resolveUser from the CRI request', () => {
  it('run_as_user wins over the image user, uid 0 included', () => {
    expect(resolveUser({ runAsUser: 0, imageUser: 'app' }, files)).toMatchObject({ uid: 0, gid: 0 });
    expect(resolveUser({ runAsUser: 1000, imageUser: 'web' }, files)).toMatchObject({ uid: 1000, gid: 1001 });
  });
  it('run_as_username wins over run_as_user', () => {
    expect(resolveUser({ runAsUsername: 'web', runAsUser: 1000 }, files)).toMatchObject({ uid: 33 });
  });
  it('run_as_group overrides the group, also of the image user', () => {
    expect(resolveUser({ runAsUser: 1000, runAsGroup: 5 }, files)).toMatchObject({ uid: 1000, gid: 5 });
    expect(resolveUser({ imageUser: 'app:video', runAsGroup: 5 }, files)).toMatchObject({
      uid: 1000,
      gid: 5,
    });
  });
  it('merges supplemental groups, deduplicated, primary first', () => {
    const r = resolveUser({ runAsUser: 1000, supplementalGroups: [29, 3000, 3000] }, files);
    expect(r.additionalGids).toEqual([1001, 10, 29, 3000]);
  });
  it('Strict policy leaves out the image groups', () => {
    const r = resolveUser(
      { runAsUser: 1000, supplementalGroups: [3000], supplementalGroupsPolicy: 'Strict' },
      files,
    );
    expect(r.additionalGids).toEqual([1001, 3000]);
  });
  it('userRequestFrom reads the security context', () => {
    const sc = containerSecurity({
      run_as_user: { value: '0' },
      run_as_group: { value: '7' },
      supplemental_groups: ['100', '200'],
      supplemental_groups_policy: 'Strict',
    });
    expect(userRequestFrom(sc, 'app')).toEqual({
      imageUser: 'app',
      runAsUser: 0,
      runAsGroup: 7,
      supplementalGroups: [100, 200],
      supplementalGroupsPolicy: 'Strict',
    });
    expect(userRequestFrom(null, 'x')).toEqual({ imageUser: 'x' });
    expect(() => userRequestFrom(containerSecurity({ run_as_user: { value: '-1' } }))).toThrow(/run_as_user/);
    expect(() => userRequestFrom(containerSecurity({ run_as_user: { value: '4294967295' } }))).toThrow(
      /out of range/,
    );
  });
});
