import { isCrun, launcherScript } from './crun-hybrid';
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
