// Exec: validates the request against the running container and answers with a single-use URL
// on the streaming server, where the client then runs the command (internal/streaming/exec.ts).
import type { ExecRequest__Output, ExecResponse } from '../../api/generated';
import { failedPrecondition, invalidArgument, short } from '../errors';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';
import { runningContainer, streamingOf } from './streaming_common';

export function exec(deps: ServerDeps) {
  return (req: ExecRequest__Output): Promise<ExecResponse> => {
    const id = requireId(req.container_id, 'container_id');
    if (req.cmd.length === 0 || !req.cmd[0]) throw invalidArgument('cmd is required');
    if (!req.stdin && !req.stdout && !req.stderr)
      throw invalidArgument('one of stdin, stdout, or stderr must be set');
    if (req.tty && req.stderr) throw invalidArgument('tty and stderr cannot both be true');
    const streaming = streamingOf(deps);
    const rec = runningContainer(deps, id);
    const rt = streaming.runtime(rec.runtimeHandler);
    if (!rt) throw failedPrecondition(`runtime handler ${short(rec.runtimeHandler)} is not configured`);
    const url = streaming.server.requestExec({
      containerId: rec.id,
      cmd: [...req.cmd],
      tty: req.tty,
      stdin: req.stdin,
      stdout: req.stdout,
      stderr: req.stderr,
      runtimePath: rt.runtimePath,
      runtimeRoot: rt.runtimeRoot,
      bundle: rec.bundle,
    });
    return Promise.resolve({ url });
  };
}
