// berthctl events: the container lifecycle events of GetContainerEvents as they happen, until ^C.
import * as grpc from '@grpc/grpc-js';
import type { CriClients } from '../../api/client';
import type { ContainerEventResponse__Output } from '../../api/generated';
import { UsageError, type Out } from './common';
import { parseFlags } from './flags';
import { rfc3339Nano, truncId, yaml } from './format';

const USAGE = 'events [-o table|json|yaml] [--no-trunc]';

const EVENT_NAMES: Record<string, string> = {
  CONTAINER_CREATED_EVENT: 'Created',
  CONTAINER_STARTED_EVENT: 'Started',
  CONTAINER_STOPPED_EVENT: 'Stopped',
  CONTAINER_DELETED_EVENT: 'Deleted',
};

/** One event as a line: time, event, container, pod name/namespace and pod id. */
export function eventLine(e: ContainerEventResponse__Output, noTrunc = false): string {
  const pod = e.pod_sandbox_status;
  const podName = pod?.metadata ? `${pod.metadata.namespace}/${pod.metadata.name}` : '-';
  return [
    rfc3339Nano(e.created_at),
    EVENT_NAMES[e.container_event_type] ?? e.container_event_type,
    truncId(e.container_id, noTrunc),
    podName,
    pod?.id ? truncId(pod.id, noTrunc) : '-',
  ].join('  ');
}

/** JSON: one compact document per line; YAML: one document per event. */
export function eventDoc(e: ContainerEventResponse__Output, output: string): string {
  if (output === 'yaml') return `---\n${yaml(e)}`;
  return JSON.stringify(e) + '\n';
}

export async function events(c: CriClients, argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    { output: { type: 'string', short: 'o', default: 'table' }, 'no-trunc': { type: 'boolean' } },
    USAGE,
  );
  if (positionals.length) throw new UsageError(USAGE);
  const output = values.output;
  if (output !== 'table' && output !== 'json' && output !== 'yaml')
    throw new UsageError(`${USAGE}\nunknown output format ${output} (table, json or yaml)`);
  const stream = c.runtime.GetContainerEvents({});
  let ended = false;
  const onSignal = (): void => {
    ended = true;
    stream.cancel();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (output === 'table') out.write('TIME  EVENT  CONTAINER  POD  POD ID\n');
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (e: ContainerEventResponse__Output) => {
        out.write(output === 'table' ? eventLine(e, values['no-trunc']) + '\n' : eventDoc(e, output));
      });
      stream.on('end', () => resolve());
      stream.on('error', (err: grpc.ServiceError) => {
        if (ended && err.code === grpc.status.CANCELLED) resolve();
        else reject(err);
      });
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
