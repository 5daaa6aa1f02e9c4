// Where each conmon lives once started. conmon is spawned by berthd and so starts in berthd's
// cgroup; left there, its memory is charged to berthd and a systemd stop of berthd.service
// (KillMode=control-group or mixed) would kill every container's monitor. Right after conmon has
// reported the container, berthd moves it:
//
//   cgroupfs driver: into `<dir>/berth-conmon-<id>` in every mounted hierarchy (v1 ones, the
//   name=systemd one and cgroup2), where <dir> is the pod's cgroup (`conmon_cgroup = "pod"`, the
//   parent of the container's own cgroup, i.e. the pod's cgroup_parent) or the configured path.
//   A leaf of its own beside the containers' cgroups, as CRI-O's `crio-conmon-<id>.scope`: on
//   cgroup v2 a cgroup with child cgroups (the pod's) may not hold processes itself ("no internal
//   processes"), and a leaf per conmon is removed with its container, so the pod cgroup can be
//   removed by kubelet. Memory is charged hierarchically, so the pod pays for its conmons.
//
//   systemd driver: into a transient scope `berth-conmon-<id>.scope` in the pod's slice (or the
//   configured slice), created by systemd over D-Bus (busctl), as CRI-O does; systemd removes the
//   scope when conmon exits.
//
// The pure parts (paths, busctl arguments, mountinfo parsing) are exported for unit tests.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { run } from '../util/run';
import { allOrFirstError } from '../util/settle';

export interface CgroupHierarchy {
  mount: string;
  version: 1 | 2;
  /** v1: controllers and name= options of the mount (e.g. ["cpu","cpuacct"], ["name=systemd"]) */
  controllers: string[];
}

/** Super options of a v1 cgroup mount that are not controllers. */
const NOT_CONTROLLERS = new Set([
  'rw',
  'ro',
  'none',
  'clone_children',
  'xattr',
  'noprefix',
  'cpuset_v2_mode',
  'favordynmods',
]);

/** Every cgroup hierarchy mounted (v1, named v1, cgroup2), first mount of each, from mountinfo text. */
export function cgroupHierarchies(mountinfo: string): CgroupHierarchy[] {
  const out: CgroupHierarchy[] = [];
  const seen = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const pre = line.slice(0, dash).split(' ');
    const post = line.slice(dash + 3).split(' ');
    const mount = (pre[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) =>
      String.fromCharCode(parseInt(o, 8)),
    );
    // only hierarchies mounted at their root: a bind of a sub-cgroup cannot take an absolute path
    if (!mount || pre[3] !== '/') continue;
    if (post[0] === 'cgroup2') {
      if (seen.has('cgroup2')) continue;
      seen.add('cgroup2');
      out.push({ mount, version: 2, controllers: [] });
    } else if (post[0] === 'cgroup') {
      const ctrls = (post[2] ?? '')
        .split(',')
        .filter((o) => o && !NOT_CONTROLLERS.has(o) && (!o.includes('=') || o.startsWith('name=')));
      const key = [...ctrls].sort().join(',');
      if (!ctrls.length || seen.has(key)) continue;
      seen.add(key);
      out.push({ mount, version: 1, controllers: ctrls });
    }
  }
  return out;
}

export const CONMON_CGROUP_PREFIX = 'berth-conmon-';

/** The cgroupfs directory of a container's cgroupsPath (cgroupfs driver: an absolute path). */
export function podCgroupDir(containerCgroupsPath: string): string {
  return path.posix.dirname(containerCgroupsPath);
}

/**
 * The cgroupfs path conmon of container `id` goes to: a leaf under the pod's cgroup (mode "pod")
 * or under the configured cgroup.
 */
export function conmonCgroupfsPath(mode: string, containerCgroupsPath: string, id: string): string {
  const dir = mode === 'pod' ? podCgroupDir(containerCgroupsPath) : mode;
  return path.posix.join(dir, `${CONMON_CGROUP_PREFIX}${id}`);
}

/** The slice a systemd-driver cgroupsPath (`slice:prefix:name`) names. */
export function sliceOf(systemdCgroupsPath: string): string {
  return systemdCgroupsPath.split(':')[0] ?? '';
}

/** busctl arguments that make systemd put `pid` into a new scope unit in `slice`. */
export function startScopeArgs(unit: string, slice: string, pid: number): string[] {
  return [
    'call',
    '--system',
    'org.freedesktop.systemd1',
    '/org/freedesktop/systemd1',
    'org.freedesktop.systemd1.Manager',
    'StartTransientUnit',
    'ssa(sv)a(sa(sv))',
    unit,
    'fail',
    '3',
    'PIDs',
    'au',
    '1',
    String(pid),
    'Slice',
    's',
    slice,
    'Description',
    's',
    `berth conmon ${unit.slice(CONMON_CGROUP_PREFIX.length, -'.scope'.length)}`,
    '0',
  ];
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(
    () => true,
    () => false,
  );
}

/** Creates `rel` (absolute cgroup path) in a v1 cpuset hierarchy, giving each new level its parent's cpus and mems. */
async function mkdirCpuset(mount: string, rel: string): Promise<void> {
  let cur = mount;
  for (const part of rel.split('/').filter(Boolean)) {
    const next = path.join(cur, part);
    if (!(await exists(next))) {
      await fsp.mkdir(next).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        const own = (await fsp.readFile(path.join(next, f), 'utf8')).trim();
        if (!own) await fsp.writeFile(path.join(next, f), await fsp.readFile(path.join(cur, f), 'utf8'));
      }
    }
    cur = next;
  }
}

/** Moves `pid` into cgroup `rel` of every hierarchy, creating it. Throws with the hierarchy that refused. */
export async function moveToCgroupfs(
  pid: number,
  rel: string,
  hierarchies: CgroupHierarchy[],
): Promise<void> {
  // the hierarchies are independent: all at once (on a v1 host, ten of them one after the other
  // took ~4.5 ms of every container create's critical path)
  await allOrFirstError(
    hierarchies.map(async (h) => {
      const dir = path.join(h.mount, rel);
      try {
        if (h.version === 1 && h.controllers.includes('cpuset')) await mkdirCpuset(h.mount, rel);
        else await fsp.mkdir(dir, { recursive: true });
        await fsp.writeFile(path.join(dir, 'cgroup.procs'), String(pid));
      } catch (err) {
        throw new Error(`cannot move conmon ${pid} into ${dir}: ${(err as Error).message}`);
      }
    }),
  );
}

/**
 * Removes cgroup `rel` from every hierarchy. A conmon killed just before may take a moment to
 * leave it (EBUSY): retried for up to `waitMs` in all; one still busy after that, or gone, is
 * skipped.
 */
export async function removeCgroupfs(
  rel: string,
  hierarchies: CgroupHierarchy[],
  waitMs = 1000,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (const h of hierarchies) {
    for (;;) {
      const code = await fsp.rmdir(path.join(h.mount, rel)).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e.code,
      );
      if (code !== 'EBUSY' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Puts `pid` into a new systemd scope `berth-conmon-<id>.scope` in `slice`. */
export async function moveToScope(pid: number, id: string, slice: string): Promise<void> {
  const unit = `${CONMON_CGROUP_PREFIX}${id}.scope`;
  const r = await run('busctl', startScopeArgs(unit, slice, pid), { timeoutMs: 10_000 });
  if (r.code !== 0)
    throw new Error(
      `cannot put conmon ${pid} into ${slice}/${unit}: ${r.stderr.trim() || `busctl exited with ${r.code ?? r.signal}`}`,
    );
}
