// ExecSync: run a command in a running container and return its output and exit code. Output is
// capped per stream (the runtime drains and drops the rest); a timeout kills the command and
// answers DEADLINE_EXCEEDED, which kubelet's exec probes read as a probe timeout.
import type { ExecSyncRequest__Output, ExecSyncResponse } from '../../api/generated';
import { invalidArgument } from '../errors';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';

export function execSync(deps: ServerDeps) {
  return async (req: ExecSyncRequest__Output): Promise<ExecSyncResponse> => {
    const id = requireId(req.container_id, 'container_id');
    if (req.cmd.length === 0 || !req.cmd[0]) throw invalidArgument('cmd is required');
    const timeout = Number(req.timeout);
    if (!Number.isFinite(timeout) || timeout < 0)
      throw invalidArgument(`timeout ${req.timeout} must be >= 0`);
    const r = await deps.containers.execSync(id, req.cmd, timeout);
    return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
  };
}
