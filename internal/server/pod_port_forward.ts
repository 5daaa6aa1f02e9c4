// PortForward: validates that the pod exists and is ready and answers with a single-use URL on
// the streaming server, which forwards each connection into the pod's network namespace.
import type { PortForwardRequest__Output, PortForwardResponse } from '../../api/generated';
import { failedPrecondition, invalidArgument, short } from '../errors';
import type { ServerDeps } from './deps';
import { requireId } from './validate_config';
import { streamingOf } from './streaming_common';

export function portForward(deps: ServerDeps) {
  return (req: PortForwardRequest__Output): Promise<PortForwardResponse> => {
    const id = requireId(req.pod_sandbox_id, 'pod_sandbox_id');
    for (const p of req.port) {
      if (!Number.isInteger(p) || p < 1 || p > 65535)
        throw invalidArgument(`port ${p} is out of range 1-65535`);
    }
    const streaming = streamingOf(deps);
    const pod = deps.sandboxes.resolve(id);
    if (pod.state !== 'ready')
      throw failedPrecondition(`pod ${short(pod.id)} is not ready (state ${pod.state})`);
    const url = streaming.server.requestPortForward({
      podId: pod.id,
      netnsPath: pod.netnsPath,
      ports: [...req.port],
    });
    return Promise.resolve({ url });
  };
}
