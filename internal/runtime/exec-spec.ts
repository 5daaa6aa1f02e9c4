// The process.json for `runc exec`: the container's own process (user, groups, capabilities,
// rlimits, apparmor/selinux labels, no_new_privileges, env, cwd) with the command replaced, so an
// exec runs with exactly the privileges of the container and no more.
import type { ExecSyncOptions, OciProcess } from './types';

export function execProcessSpec(base: OciProcess, cmd: string[], opts: ExecSyncOptions = {}): OciProcess {
  if (cmd.length === 0 || cmd[0] === '') throw new Error('exec command is empty');
  const spec: OciProcess = { ...base, args: [...cmd], terminal: opts.tty ?? false };
  if (opts.env) spec.env = [...opts.env];
  if (opts.cwd) spec.cwd = opts.cwd;
  // The console size belongs to the container's own terminal; an exec gets its own.
  delete spec.consoleSize;
  // oom_score_adj is set once for the container; repeating it on exec can fail without CAP_SYS_RESOURCE.
  delete spec.oomScoreAdj;
  return spec;
}
