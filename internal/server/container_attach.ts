// Attach: validates the request against the running container and answers with a single-use URL
// on the streaming server, which connects the client to conmon's attach socket.
import * as path from 'node:path';
import type { AttachRequest__Output, AttachResponse } from '../../api/generated';
import { failedPrecondition, invalidArgument, short } from '../errors';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';
import { runningContainer, streamingOf } from './streaming_common';

export function attach(deps: ServerDeps) {
  return (req: AttachRequest__Output): Promise<AttachResponse> => {
    const id = requireId(req.container_id, 'container_id');
    if (!req.stdin && !req.stdout && !req.stderr)
      throw invalidArgument('one of stdin, stdout, or stderr must be set');
    if (req.tty && req.stderr) throw invalidArgument('tty and stderr cannot both be true');
    const streaming = streamingOf(deps);
    const rec = runningContainer(deps, id);
    if (req.stdin && !rec.config.stdin)
      throw failedPrecondition(`container ${short(rec.id)} was not created with stdin`);
    if (req.tty !== Boolean(rec.config.tty))
      throw invalidArgument(`tty ${req.tty} does not match the container's tty ${Boolean(rec.config.tty)}`);
    const rt = streaming.runtime(rec.runtimeHandler);
    if (!rt) throw failedPrecondition(`runtime handler ${short(rec.runtimeHandler)} is not configured`);
    const url = streaming.server.requestAttach({
      containerId: rec.id,
      tty: req.tty,
      stdin: req.stdin,
      stdout: req.stdout,
      stderr: req.stderr,
      attachSocket: rt.attachSocket(rec.id),
      ctlFifo: path.join(rec.bundle, 'ctl'),
    });
    return Promise.resolve({ url });
  };
}
