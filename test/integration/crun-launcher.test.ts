// berth-crun-v1 (native/src/crun-launcher.c), the crun launcher of cgroup v1/v2 hybrid hosts, run
// for real: the program it execs sees cgroup2's controller list hidden and every argument as given,
// and the host's mount table does not change. Only where the host is such a hybrid.
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  HYBRID_UNIFIED,
  defaultNativeLauncherPath,
  hybridWithV2Controllers,
  writeLauncher,
} from '../../internal/runtime/crun-hybrid';

const controllers = path.join(HYBRID_UNIFIED, 'cgroup.controllers');

test('berth-crun-v1 hides the cgroup2 controllers from the runtime it execs and passes its arguments on', async () => {
  if (!(await hybridWithV2Controllers())) return; // not a hybrid host with cgroup2 controllers
  const native = defaultNativeLauncherPath();
  expect(native && readFileSync(native).length > 0).toBe(true); // npm test builds it

  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-crun-v1-'));
  const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8');
  try {
    const launcher = await writeLauncher(dir, '/bin/sh', native);
    const args = [
      '-c',
      'cat "$1"; echo "[$0]"; shift; printf "<%s>" "$@"',
      'sh0',
      controllers,
      'a b',
      "it's",
      '',
    ];
    const r = spawnSync(launcher, args, { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // the runtime read an empty controller list and got every argument unchanged (for sh -c, `$0`
    // is the first one after the script)
    expect(r.stdout).toBe(`[sh0]\n<a b><it's><>`);
    expect(readFileSync(controllers, 'utf8').trim()).not.toBe(''); // the host still sees them
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toBe(mountsBefore);

    // the runtime's exit status comes back; a settings file that is gone is a clear failure
    expect(spawnSync(launcher, ['-c', 'exit 7']).status).toBe(7);
    await fsp.rm(`${launcher}.conf`);
    const broken = spawnSync(launcher, ['-c', 'true'], { encoding: 'utf8' });
    expect(broken.status).toBe(125);
    expect(broken.stderr).toContain(`berth-crun-v1: open ${launcher}.conf: No such file or directory`);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
