// Shared checks of the three streaming RPCs (Exec, Attach, PortForward).
import { BerthError, Status, failedPrecondition, short } from '../errors';
import type { ContainerRecord } from '../container/types';
import type { StreamingDeps } from '../streaming/types';
import type { ServerDeps } from './deps';

export function streamingOf(deps: ServerDeps): StreamingDeps {
  if (!deps.streaming) throw new BerthError(Status.UNAVAILABLE, 'the streaming server is not running');
  return deps.streaming;
}

export function runningContainer(deps: ServerDeps, id: string): ContainerRecord {
  const rec = deps.containers.resolve(id);
  if (rec.state !== 'running')
    throw failedPrecondition(`container ${short(rec.id)} is not running (state ${rec.state})`);
  return rec;
}
