import { Status } from '../errors';
import { CappedBuffer } from './capped-buffer';
import { conmonCreateArgs, normalizeSignal, parseExitFile, parseSyncMessage } from './conmon-args';
import { execProcessSpec } from './exec-spec';
import { RuntimePaths, isValidRuntimeId } from './paths';
import { RuncError, classifyRuncError, runcErrorMessage } from './runc-error';
import { RuncCli } from './runc';

describe('conmonCreateArgs', () => {
  const paths = new RuntimePaths('/run/b');
  const base = { runtimePath: '/usr/sbin/runc', runtimeRoot: '/run/b/runc', paths };

  test('the flags conmon needs, paths under the state dir', () => {
    const args = conmonCreateArgs({ ...base, create: { id: 'c1', bundle: '/b/c1', logPath: '/l/c1.log' } });
    const flag = (f: string): string | undefined => args[args.indexOf(f) + 1];
    expect(flag('--api-version')).toBe('1');
    expect(flag('-c')).toBe('c1');
    expect(flag('-u')).toBe('c1');
    expect(flag('-r')).toBe('/usr/sbin/runc');
    expect(flag('-b')).toBe('/b/c1');
    expect(flag('-p')).toBe('/run/b/pids/c1.pid');
    expect(flag('-P')).toBe('/run/b/pids/c1.conmon');
    expect(flag('--exit-dir')).toBe('/run/b/exits');
    expect(flag('--persist-dir')).toBe('/run/b/persist/c1');
    expect(flag('--socket-dir-path')).toBe('/run/b/sockets');
    expect(flag('-l')).toBe('k8s-file:/l/c1.log');
    expect(flag('--runtime-arg')).toBe('--root=/run/b/runc');
    for (const f of ['-t', '-i', '--leave-stdin-open', '--log-size-max', '--sync'])
      expect(args).not.toContain(f);
  });

  test('tty, stdin, stdin_once, log size', () => {
    const a = conmonCreateArgs({
      ...base,
      create: { id: 'c', bundle: '/b', logPath: '/l', tty: true, stdin: true, logSizeMax: 1024 },
    });
    expect(a).toEqual(expect.arrayContaining(['-t', '-i', '--leave-stdin-open', '--log-size-max', '1024']));
    const once = conmonCreateArgs({
      ...base,
      create: { id: 'c', bundle: '/b', logPath: '/l', stdin: true, stdinOnce: true },
    });
    expect(once).toContain('-i');
    expect(once).not.toContain('--leave-stdin-open');
  });

  test('systemd cgroup driver: conmon -s style flag and --systemd-cgroup for the runtime', () => {
    const create = { id: 'c', bundle: '/b', logPath: '/l' };
    expect(conmonCreateArgs({ ...base, create })).not.toContain('--systemd-cgroup');
    const a = conmonCreateArgs({ ...base, create, systemdCgroup: true });
    // conmon's own flag, and the runtime's global flag passed through
    expect(a.filter((x) => x === '--systemd-cgroup')).toHaveLength(2);
    expect(a[a.indexOf('--systemd-cgroup') - 1]).toBe('--runtime-arg');
    expect(new RuncCli('/usr/sbin/runc', '/r', true).globalArgs()).toEqual([
      '--root',
      '/r',
      '--systemd-cgroup',
    ]);
    expect(new RuncCli('/usr/sbin/runc', '/r').globalArgs()).toEqual(['--root', '/r']);
  });
  test('restore: --restore with the CRIU image dir and each runc restore option as --runtime-opt', () => {
    const create = { id: 'c', bundle: '/b', logPath: '/l' };
    expect(conmonCreateArgs({ ...base, create })).not.toContain('--restore');
    const a = conmonCreateArgs({
      ...base,
      create: { ...create, restore: { imagePath: '/b/restore/checkpoint', runtimeOpts: ['--file-locks'] } },
    });
    expect(a.slice(-4)).toEqual(['--restore', '/b/restore/checkpoint', '--runtime-opt', '--file-locks']);
    // everything else is as for a create (bundle, pid file, log, runtime root)
    expect(a.slice(0, -4)).toEqual(conmonCreateArgs({ ...base, create }));
  });
});

describe('sync pipe and exit files', () => {
  test('parses success, failure, and waits for a full line', () => {
    expect(parseSyncMessage('{"data": 42}')).toBeUndefined();
    expect(parseSyncMessage('{"data": 42}\n')).toEqual({ data: 42, message: undefined });
    expect(parseSyncMessage('{"pid": 7}\n')).toEqual({ data: 7, message: undefined });
    expect(parseSyncMessage('{"data": -1, "message": "boom"}\n{"data": 3}\n')).toEqual({
      data: -1,
      message: 'boom',
    });
    expect(() => parseSyncMessage('{"what": 1}\n')).toThrow(/unexpected/);
    expect(() => parseSyncMessage('nope\n')).toThrow();
  });

  test('exit file content', () => {
    expect(parseExitFile('3')).toBe(3);
    expect(parseExitFile('137\n')).toBe(137);
    expect(parseExitFile('-1')).toBe(-1);
    expect(parseExitFile('')).toBeUndefined();
    expect(parseExitFile('x1')).toBeUndefined();
  });
});

describe('signals and ids', () => {
  test('normalizeSignal', () => {
    expect(normalizeSignal('TERM')).toBe('SIGTERM');
    expect(normalizeSignal('sigkill')).toBe('SIGKILL');
    expect(normalizeSignal('SIGRTMIN+3')).toBe('SIGRTMIN+3');
    expect(normalizeSignal(9)).toBe('9');
    expect(normalizeSignal('15')).toBe('15');
    expect(() => normalizeSignal(0)).toThrow();
    expect(() => normalizeSignal(65)).toThrow();
    expect(() => normalizeSignal('KILL; rm -rf /')).toThrow();
  });

  test('isValidRuntimeId', () => {
    expect(isValidRuntimeId('a'.repeat(64))).toBe(true);
    expect(isValidRuntimeId('pod_1.x-y')).toBe(true);
    for (const bad of ['', '.', '..', '../x', 'a/b', '-a', 'a b', 'a\0', 'x'.repeat(129)])
      expect(isValidRuntimeId(bad)).toBe(false);
  });
});

describe('runc errors', () => {
  test('extracts logrus text and JSON messages', () => {
    const text =
      'time="2026-01-01T00:00:00Z" level=warning msg="ignored"\n' +
      'time="2026-01-01T00:00:00Z" level=error msg="runc create failed: exec: \\"/x\\": stat /x: no such file"\n';
    expect(runcErrorMessage(text)).toBe('runc create failed: exec: "/x": stat /x: no such file');
    const json = '{"level":"debug","msg":"nsexec"}\n{"level":"error","msg":"exec failed: boom","time":"t"}\n';
    expect(runcErrorMessage(json)).toBe('exec failed: boom');
    expect(runcErrorMessage('  plain failure \n')).toBe('plain failure');
    expect(runcErrorMessage('x'.repeat(5000)).length).toBeLessThan(2100);
  });

  test("the caller's faults runc reports are INVALID_ARGUMENT", () => {
    const cases: Array<[string, RegExp]> = [
      [
        'runc create failed: unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory',
        /the command "\/nonexistent" cannot be run/,
      ],
      [
        'exec failed: unable to start container process: exec: "foo": executable file not found in $PATH',
        /the command "foo"/,
      ],
      ['executable file `foo` not found in $PATH: No such file or directory', /the command "foo"/],
      [
        'error during container init: open /proc/sys/net/nonexistent/foo: no such file or directory',
        /sysctl net\.nonexistent\.foo does not exist/,
      ],
      [
        'error during container init: write /proc/sys/kernel/shm_rmid_forced: invalid argument',
        /refuses the value of sysctl kernel\.shm_rmid_forced/,
      ],
    ];
    for (const [msg, why] of cases) {
      expect(classifyRuncError(msg)).toBe('invalid');
      const e = new RuncError('exec', classifyRuncError(msg), msg);
      expect(e.code).toBe(Status.INVALID_ARGUMENT);
      expect(e.message).toMatch(why);
    }
    expect(classifyRuncError('open /sys/fs/cgroup/x: no such file or directory')).toBe('other');
  });

  test('classification and gRPC codes', () => {
    expect(classifyRuncError('container does not exist')).toBe('not-found');
    expect(classifyRuncError('container not running')).toBe('not-running');
    expect(classifyRuncError('cannot exec in a stopped container')).toBe('not-running');
    expect(classifyRuncError('cannot delete container c1 that is not stopped: running')).toBe('wrong-state');
    expect(classifyRuncError('container not paused')).toBe('wrong-state');
    expect(classifyRuncError('unable to start container process')).toBe('other');
    // crun's wording
    expect(
      classifyRuncError('error opening file `/run/berth/runtime/crun/abc/status`: No such file or directory'),
    ).toBe('not-found');
    expect(classifyRuncError("cannot open directory '/run/x/abc': No such file or directory")).toBe(
      'not-found',
    );
    expect(classifyRuncError('kill container: No such process')).toBe('not-running');
    expect(new RuncError('state', 'not-found', 'x').code).toBe(Status.NOT_FOUND);
    expect(new RuncError('kill', 'not-running', 'x').code).toBe(Status.FAILED_PRECONDITION);
    expect(new RuncError('create', 'other', 'x').code).toBe(Status.INTERNAL);
  });
});

describe('execProcessSpec', () => {
  const base = {
    terminal: true,
    user: { uid: 1000, gid: 1000, additionalGids: [5] },
    args: ['/pause'],
    env: ['PATH=/bin', 'A=1'],
    cwd: '/app',
    capabilities: { bounding: ['CAP_KILL'] },
    noNewPrivileges: true,
    oomScoreAdj: 500,
    consoleSize: { height: 10, width: 10 },
  };

  test('keeps the container identity, replaces the command', () => {
    const s = execProcessSpec(base, ['sh', '-c', 'id']);
    expect(s.args).toEqual(['sh', '-c', 'id']);
    expect(s.user).toEqual(base.user);
    expect(s.env).toEqual(base.env);
    expect(s.cwd).toBe('/app');
    expect(s.capabilities).toEqual(base.capabilities);
    expect(s.noNewPrivileges).toBe(true);
    expect(s.terminal).toBe(false);
    expect(s).not.toHaveProperty('oomScoreAdj');
    expect(s).not.toHaveProperty('consoleSize');
    expect(base.args).toEqual(['/pause']); // input untouched
  });

  test('overrides and refusals', () => {
    const s = execProcessSpec(base, ['x'], { env: ['B=2'], cwd: '/tmp', tty: true });
    expect(s).toMatchObject({ env: ['B=2'], cwd: '/tmp', terminal: true });
    expect(() => execProcessSpec(base, [])).toThrow(/empty/);
    expect(() => execProcessSpec(base, [''])).toThrow(/empty/);
  });
});

describe('CappedBuffer', () => {
  test('keeps up to the cap and counts the rest', () => {
    const b = new CappedBuffer(5);
    b.push(Buffer.from('abc'));
    b.push(Buffer.from('defg'));
    b.push(Buffer.from('hij'));
    expect(b.toBuffer().toString()).toBe('abcde');
    expect(b.length).toBe(5);
    expect(b.dropped).toBe(5);
    const z = new CappedBuffer(0);
    z.push(Buffer.from('x'));
    expect(z.toBuffer().length).toBe(0);
    expect(z.dropped).toBe(1);
  });
});
