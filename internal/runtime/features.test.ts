import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCrun, launcherScript, nativeLauncherConf, writeLauncher } from './crun-hybrid';
import { criuProblem, parseFeatures } from './features';

test('rro comes from the mountOptions of `runc features`', () => {
  expect(parseFeatures(JSON.stringify({ mountOptions: ['ro', 'rro', 'rbind'] })).rro).toBe(true);
  expect(parseFeatures(JSON.stringify({ mountOptions: ['ro'] })).rro).toBe(false);
  expect(parseFeatures('unknown command features').rro).toBe(false);
  expect(parseFeatures(JSON.stringify({ mountOptions: ['rnoexec', 7] })).mountOptions).toEqual(['rnoexec']);
});

test('criu check problems are its Error lines', () => {
  const out =
    'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\nError (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed\n';
  expect(criuProblem(out)).toBe(
    'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds; Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed',
  );
});

test('the crun launcher for hybrid hosts hides cgroup2 controllers and passes every argument on', () => {
  expect(isCrun('/usr/bin/crun')).toBe(true);
  expect(isCrun('/usr/local/bin/crun-1.14')).toBe(true);
  expect(isCrun('/usr/sbin/runc')).toBe(false);
  const s = launcherScript("/opt/it's/crun");
  expect(s).toMatch(/^#!\/bin\/sh\n/);
  expect(s).toContain('exec unshare --mount /bin/sh -c ');
  expect(s).toContain('mount --bind /dev/null /sys/fs/cgroup/unified/cgroup.controllers && exec "$0" "$@"');
  expect(s).toContain(`'/opt/it'\\''s/crun' "$@"`);
});

test('the native crun launcher takes its settings from one file beside it; the script serves otherwise', async () => {
  expect(nativeLauncherConf('/usr/bin/crun')).toBe('/sys/fs/cgroup/unified\n/usr/bin/crun\n');
  // berth-crun-v1 execs by path: a bare name or a path with a newline cannot go in its settings
  expect(nativeLauncherConf('crun')).toBeUndefined();
  expect(nativeLauncherConf('/opt/a\nb/crun')).toBeUndefined();

  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-launcher-'));
  try {
    const program = path.join(dir, 'program');
    await fsp.writeFile(program, 'not really a program');
    const file = await writeLauncher(dir, '/usr/bin/crun', program);
    expect(file).toBe(path.join(dir, 'crun-v1'));
    expect(await fsp.readFile(file, 'utf8')).toBe('not really a program');
    expect((await fsp.stat(file)).mode & 0o777).toBe(0o700);
    expect(await fsp.readFile(`${file}.conf`, 'utf8')).toBe('/sys/fs/cgroup/unified\n/usr/bin/crun\n');

    // no native program (not built), or a runtime it cannot name: the script
    await writeLauncher(dir, '/usr/bin/crun', path.join(dir, 'missing'));
    expect(await fsp.readFile(file, 'utf8')).toBe(launcherScript('/usr/bin/crun'));
    await writeLauncher(dir, 'crun', program);
    expect(await fsp.readFile(file, 'utf8')).toBe(launcherScript('crun'));
    expect((await fsp.readdir(dir)).sort()).toEqual(['crun-v1', 'crun-v1.conf', 'program']);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
