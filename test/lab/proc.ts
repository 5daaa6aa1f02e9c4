// What the benchmarks read of a process in /proc: CPU times from `stat`, memory from `status`.
import * as fs from 'node:fs';

/** Clock ticks per second of the times in /proc/<pid>/stat (USER_HZ). */
export const TICKS = 100;

export interface ProcStat {
  /** utime + stime, ticks */
  own: number;
  /** cutime + cstime (children it reaped), ticks */
  children: number;
  ppid: number;
}

/** `pid`'s CPU times and parent; undefined once it is gone. */
export function procStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // the fields after the command name (which may hold spaces and parentheses)
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    own: Number(f[11]) + Number(f[12]),
    children: Number(f[13]) + Number(f[14]),
    ppid: Number(f[1]),
  };
}

/** A kB field of /proc/<pid>/status (VmRSS, VmHWM, ...); 0 once the process is gone. */
export function procStatusKb(pid: number, field = 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
