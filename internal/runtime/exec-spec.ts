// The process.json for `runc exec`: the container's own process (user, groups, capabilities,
// rlimits, apparmor/selinux labels, no_new_privileges, env, cwd) with the command replaced, so an
// exec runs with exactly the privileges of the container and no more.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { runcLogError } from './runc-error';
import type { ExecSyncOptions, OciProcess } from './types';
import { uniqueSuffix } from '../util/unique';

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

/** The scratch files of one `runc exec`: its process spec, pid file and runc's own log. */
export interface ExecScratch {
  pidFile: string;
  /** the `exec` arguments, to follow the runtime's global flags (--root) */
  execArgs: string[];
  /** runc's own error text from its log ('' when it reported none): the command never ran */
  runtimeError(): Promise<string>;
  remove(): Promise<void>;
}

/** Writes `spec` for an exec in container `id` under `workDir` and names the files around it. */
export async function prepareExec(workDir: string, id: string, spec: OciProcess): Promise<ExecScratch> {
  const tag = `${id.slice(0, 24)}-${uniqueSuffix()}`;
  const specFile = path.join(workDir, `${tag}.json`);
  const pidFile = path.join(workDir, `${tag}.pid`);
  const logFile = path.join(workDir, `${tag}.log`);
  await fsp.writeFile(specFile, JSON.stringify(spec), { mode: 0o600 });
  return {
    pidFile,
    execArgs: [
      '--log',
      logFile,
      '--log-format',
      'json',
      'exec',
      '--process',
      specFile,
      '--pid-file',
      pidFile,
      id,
    ],
    async runtimeError() {
      return runcLogError(await fsp.readFile(logFile, 'utf8').catch(() => ''));
    },
    async remove() {
      await Promise.all([specFile, pidFile, logFile].map((f) => fsp.rm(f, { force: true })));
    },
  };
}
