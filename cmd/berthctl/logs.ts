// berthctl logs: reads the container's CRI log file directly, as crictl does.
import * as grpc from '@grpc/grpc-js';
import { call, type CriClients } from '../../api/client';
import { UsageError, type Out } from './common';
import { follow, LogReader, parseSince, type LogRecord } from './crilog';
import { parseFlags } from './flags';
import { resolveContainerId } from './ids';

const USAGE = 'logs [-f|--follow] [--tail N] [-t|--timestamps] [--since TIME|DURATION] CONTAINER-ID';

export interface LogsDeps {
  /** Aborted on SIGINT when run from the command line. */
  signal?: AbortSignal;
  pollMs?: number;
  statusMs?: number;
}

export async function logs(
  c: CriClients,
  argv: string[],
  out: Out,
  err: Out,
  deps: LogsDeps = {},
): Promise<void> {
  const { values, positionals } = parseFlags(
    argv,
    {
      follow: { type: 'boolean', short: 'f' },
      tail: { type: 'string' },
      timestamps: { type: 'boolean', short: 't' },
      since: { type: 'string' },
    },
    USAGE,
  );
  if (positionals.length !== 1) throw new UsageError(USAGE);
  let tail = -1;
  if (values.tail !== undefined) {
    if (!/^-?\d+$/.test(values.tail))
      throw new UsageError(`${USAGE}\n--tail wants a number, got ${values.tail}`);
    tail = Number(values.tail);
  }
  let sinceMs: number | undefined;
  if (values.since !== undefined) {
    try {
      sinceMs = parseSince(values.since);
    } catch (e) {
      throw new UsageError(`${USAGE}\n${(e as Error).message}`);
    }
  }

  const id = await resolveContainerId(c, positionals[0]);
  const st = await call(c.runtime, 'ContainerStatus', { container_id: id });
  const logPath = st.status?.log_path;
  if (!logPath) throw new Error(`container ${id} has no log path`);

  const ts = values.timestamps;
  const sink = (r: LogRecord): void => {
    const line = `${ts && r.time ? r.time + ' ' : ''}${r.text}${r.complete ? '\n' : ''}`;
    (r.stream === 'stderr' ? err : out).write(line);
  };
  const reader = new LogReader(logPath, sink);
  try {
    const found = await reader.readInitial({ tail, sinceMs });
    if (!values.follow) {
      if (!found) throw new Error(`log file ${logPath} of container ${id} does not exist`);
      reader.flushPartial();
      return;
    }
    const ctl = new AbortController();
    const onSigint = (): void => ctl.abort();
    if (deps.signal) deps.signal.addEventListener('abort', onSigint);
    else process.once('SIGINT', onSigint);
    try {
      await follow(reader, {
        signal: ctl.signal,
        pollMs: deps.pollMs,
        statusMs: deps.statusMs,
        isRunning: async () => {
          try {
            const s = await call(c.runtime, 'ContainerStatus', { container_id: id });
            return s.status?.state === 'CONTAINER_RUNNING' || s.status?.state === 'CONTAINER_CREATED';
          } catch (e) {
            if ((e as { code?: number }).code === grpc.status.NOT_FOUND) return false; // removed meanwhile
            throw e;
          }
        },
      });
      reader.flushPartial();
    } finally {
      if (deps.signal) deps.signal.removeEventListener('abort', onSigint);
      else process.removeListener('SIGINT', onSigint);
    }
  } finally {
    reader.close();
  }
}
