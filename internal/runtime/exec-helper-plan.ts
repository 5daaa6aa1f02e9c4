// What berth-exec (native/src/exec-helper.c) needs to run a command in a container as `runc exec`
// would, derived from the container's OCI spec once per container. Pure: no I/O here.
//
// runc exec without --process takes the container's own process spec and replaces the arguments
// (and adds --env/--cwd); everything below mirrors what runc applies to that process. A spec with
// something berth-exec cannot reproduce yields a fallback reason, and the exec stays on runc.
import { ALL_CAPABILITIES } from '../oci/capabilities';
import type {
  OciNamespaceType,
  OciSeccomp,
  OciSeccompSyscall,
  OciSpec,
  SeccompAction,
} from '../oci/spec-types';

export type PlanResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const NS_NAMES: Record<OciNamespaceType, string> = {
  mount: 'mnt',
  uts: 'uts',
  ipc: 'ipc',
  network: 'net',
  pid: 'pid',
  cgroup: 'cgroup',
  user: 'user',
};

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** seccomp(2) filter flags runc passes through from the profile. */
const SECCOMP_FLAGS: Record<string, number> = {
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
};

/** Process fields berth-exec reproduces; any other field set in the spec means runc. */
const KNOWN_PROCESS_FIELDS = new Set([
  'terminal',
  'user',
  'args',
  'env',
  'cwd',
  'capabilities',
  'rlimits',
  'noNewPrivileges',
  'oomScoreAdj',
  'apparmorProfile',
  'selinuxLabel',
  'consoleSize',
]);

function capMask(names: string[] | undefined): bigint {
  let m = 0n;
  for (const n of names ?? []) {
    const i = ALL_CAPABILITIES.indexOf(n);
    // runc warns about and skips capabilities it does not know
    if (i >= 0) m |= 1n << BigInt(i);
  }
  return m;
}

/** The per-container part of berth-exec's command line (everything but log, pid file, command). */
export interface ExecTarget {
  id: string;
  /** host pid of the container's init, and its start time (field 22 of /proc/PID/stat) */
  pid: number;
  startTime: string;
  /** cgroup.procs files of the init's cgroups, as seen from the daemon */
  cgroupProcs: string[];
  /** compiled seccomp program (see seccompProgram), when the spec has a profile */
  seccompBpf?: string;
}

/**
 * berth-exec's arguments for the container (before `--` and the command), or why it cannot stand
 * in for runc with this spec. `extraEnv`/`cwd` are ExecSync's additions (as runc exec --env/--cwd).
 */
export function execHelperArgs(
  spec: OciSpec,
  target: ExecTarget,
  extra: { env?: string[]; cwd?: string } = {},
): PlanResult<string[]> {
  const p = spec.process;
  if (!p) return { ok: false, reason: 'spec has no process' };
  for (const k of Object.keys(p))
    if (!KNOWN_PROCESS_FIELDS.has(k)) return { ok: false, reason: `process.${k} is set` };
  if (p.apparmorProfile) return { ok: false, reason: 'AppArmor profile' };
  if (p.selinuxLabel) return { ok: false, reason: 'SELinux label' };
  if (!p.capabilities) return { ok: false, reason: 'spec has no capabilities' };
  const linux = spec.linux as unknown as Record<string, unknown>;
  for (const k of ['personality', 'intelRdt', 'timeOffsets'])
    if (linux[k] !== undefined) return { ok: false, reason: `linux.${k} is set` };
  if (spec.linux.seccomp && !target.seccompBpf) return { ok: false, reason: 'seccomp not compiled' };

  const ns: string[] = [];
  for (const n of spec.linux.namespaces) {
    const name = NS_NAMES[n.type];
    if (!name) return { ok: false, reason: `namespace ${n.type}` };
    ns.push(name);
  }
  const args = ['--pid', String(target.pid), '--start-time', target.startTime];
  if (ns.length) args.push('--ns', ns.join(','));
  for (const c of target.cgroupProcs) args.push('--cgroup-procs', c);
  for (const r of p.rlimits ?? []) {
    const n = RLIMITS[r.type];
    if (n === undefined) return { ok: false, reason: `rlimit ${r.type}` };
    args.push('--rlimit', `${n}:${u64(r.soft)}:${u64(r.hard)}`);
  }
  if (p.oomScoreAdj !== undefined) args.push('--oom-score-adj', String(p.oomScoreAdj));
  args.push('--uid', String(p.user.uid), '--gid', String(p.user.gid));
  if (p.user.additionalGids?.length) args.push('--groups', p.user.additionalGids.join(','));
  if (p.user.umask !== undefined) args.push('--umask', String(p.user.umask));
  const c = p.capabilities;
  args.push(
    '--caps',
    [c.bounding, c.effective, c.permitted, c.inheritable, c.ambient]
      .map((s) => capMask(s).toString(16))
      .join(':'),
  );
  args.push('--no-new-privs', p.noNewPrivileges ? '1' : '0');
  if (spec.linux.seccomp && target.seccompBpf) {
    const flags = seccompFlags(spec.linux.seccomp);
    if (!flags.ok) return flags;
    args.push('--seccomp-bpf', target.seccompBpf);
    if (flags.value) args.push('--seccomp-flags', String(flags.value));
  }
  args.push('--session-keyring', `_ses.${target.id}`);
  args.push('--cwd', extra.cwd || p.cwd || '/');
  for (const e of mergeEnv(p.env ?? [], extra.env ?? [])) args.push('--env', e);
  return { ok: true, value: args };
}

/** runc exec --env: an added variable replaces the process's one of the same name. */
export function mergeEnv(base: string[], added: string[]): string[] {
  if (!added.length) return base;
  const name = (e: string): string => e.split('=', 1)[0];
  const replaced = new Set(added.map(name));
  return [...base.filter((e) => !replaced.has(name(e))), ...added];
}

function seccompFlags(s: OciSeccomp): PlanResult<number> {
  let v = 0;
  for (const f of s.flags ?? []) {
    const bit = SECCOMP_FLAGS[f];
    if (bit === undefined) return { ok: false, reason: `seccomp flag ${f}` };
    v |= bit;
  }
  return { ok: true, value: v };
}

function u64(n: number): string {
  // JSON numbers of rlimits/seccomp values are integers; print them without exponent
  return BigInt(Math.trunc(n)).toString();
}

const ACTIONS: Record<SeccompAction, string | undefined> = {
  SCMP_ACT_KILL: 'kill',
  SCMP_ACT_KILL_PROCESS: 'kill_process',
  SCMP_ACT_KILL_THREAD: 'kill_thread',
  SCMP_ACT_TRAP: 'trap',
  SCMP_ACT_ERRNO: 'errno',
  SCMP_ACT_TRACE: 'trace',
  SCMP_ACT_ALLOW: 'allow',
  SCMP_ACT_LOG: 'log',
  SCMP_ACT_NOTIFY: undefined,
};

const OPS: Record<string, string> = {
  SCMP_CMP_NE: 'ne',
  SCMP_CMP_LT: 'lt',
  SCMP_CMP_LE: 'le',
  SCMP_CMP_EQ: 'eq',
  SCMP_CMP_GE: 'ge',
  SCMP_CMP_GT: 'gt',
  SCMP_CMP_MASKED_EQ: 'masked_eq',
};

const EPERM = 1;

/**
 * The filter description `berth-exec compile-seccomp` turns into BPF with libseccomp, built the
 * way runc builds its filter from the same profile: the default action (errno defaulting to EPERM),
 * the extra architectures, then one rule per syscall name; a rule whose conditions name one
 * argument more than once becomes one rule per condition (runc's OR case), otherwise one rule with
 * all conditions (AND). Rules with the default action and unknown syscalls are skipped by the
 * compiler, as by runc.
 */
export function seccompProgram(s: OciSeccomp): PlanResult<string> {
  if (s.listenerPath) return { ok: false, reason: 'seccomp notify listener' };
  const action = (a: SeccompAction, errnoRet: number | undefined): PlanResult<string> => {
    const name = ACTIONS[a];
    if (!name) return { ok: false, reason: `seccomp action ${a}` };
    return { ok: true, value: `${name} ${errnoRet ?? EPERM}` };
  };
  const def = action(s.defaultAction, s.defaultErrnoRet);
  if (!def.ok) return def;
  const lines = [`default ${def.value}`];
  for (const arch of s.architectures ?? []) {
    if (!/^SCMP_ARCH_[A-Z0-9_]+$/.test(arch)) return { ok: false, reason: `seccomp arch ${arch}` };
    lines.push(`arch ${arch.slice('SCMP_ARCH_'.length).toLowerCase()}`);
  }
  for (const sc of s.syscalls ?? []) {
    const act = action(sc.action, sc.errnoRet);
    if (!act.ok) return act;
    const groups = conditionGroups(sc);
    if (!groups.ok) return groups;
    for (const name of sc.names) {
      if (!/^[a-z0-9_]+$/.test(name)) return { ok: false, reason: `seccomp syscall ${name}` };
      for (const conds of groups.value) lines.push(`rule ${act.value} ${name} ${conds}`);
    }
  }
  return { ok: true, value: `${lines.join('\n')}\n` };
}

function conditionGroups(sc: OciSeccompSyscall): PlanResult<string[]> {
  const args = sc.args ?? [];
  if (!args.length) return { ok: true, value: ['0'] };
  const conds: string[] = [];
  const perIndex = new Map<number, number>();
  for (const a of args) {
    const op = OPS[a.op];
    if (!op || a.index < 0 || a.index > 5) return { ok: false, reason: `seccomp condition ${a.op}` };
    perIndex.set(a.index, (perIndex.get(a.index) ?? 0) + 1);
    conds.push(`${a.index} ${op} ${u64(a.value)} ${u64(a.valueTwo ?? 0)}`);
  }
  const split = [...perIndex.values()].some((n) => n > 1);
  return { ok: true, value: split ? conds.map((c) => `1 ${c}`) : [`${conds.length} ${conds.join(' ')}`] };
}

/** Start time (clock ticks since boot) from /proc/PID/stat: field 22, after the `(comm)`. */
export function statStartTime(stat: string): string | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] is field 3 (state)
  const v = fields[22 - 3];
  return v && /^\d+$/.test(v) ? v : undefined;
}

/**
 * The cgroup.procs files of a process's cgroups, from its /proc/PID/cgroup and the daemon's
 * /proc/self/mountinfo: each hierarchy line is matched to the cgroup mount with the same
 * controllers (v1; `name=` hierarchies too) or to the cgroup2 mount (the `0::` line).
 */
export function cgroupProcsFiles(procCgroup: string, mountinfo: string): string[] {
  const mounts: { root: string; point: string; fstype: string; opts: Set<string> }[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const fstype = post[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    mounts.push({
      root: unescapeMount(pre[3]),
      point: unescapeMount(pre[4]),
      fstype,
      opts: new Set((post[2] ?? '').split(',')),
    });
  }
  const out: string[] = [];
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, , ctrls, cgPath] = m;
    const mount =
      ctrls === ''
        ? mounts.find((x) => x.fstype === 'cgroup2')
        : mounts.find((x) => x.fstype === 'cgroup' && ctrls.split(',').every((c) => x.opts.has(c)));
    if (!mount) continue;
    let rel = cgPath;
    if (mount.root !== '/' && (rel === mount.root || rel.startsWith(`${mount.root}/`)))
      rel = rel.slice(mount.root.length);
    const file = `${mount.point}${rel === '/' ? '' : rel}/cgroup.procs`;
    if (!out.includes(file)) out.push(file);
  }
  return out;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
