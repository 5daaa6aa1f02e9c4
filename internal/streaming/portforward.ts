// Port forwarding: each forwarded connection is a `socat` joined to the pod's network namespace
// by `nsenter --net=<pinned netns>`, connecting to 127.0.0.1:<port> there, with its stdio as the
// data stream (kubelet's own dockershim did the same). Node cannot setns(2) itself, and doing it
// in a native thread would leave a thread of the daemon in the pod's namespace; a process per
// connection is isolated, costs one exec (nsenter execs socat, so one process, not two), and dies
// with its connection. A host-network pod gets socat without nsenter.
import { spawnProcess } from '../util/spawn';
import type { Duplex, Writable } from 'node:stream';
import type { Logger } from '../log';
import { runtimeEnv } from '../runtime/runc';

const MAX_STDERR = 4096;
/** How long a closed stdout waits for socat's exit status before it counts as a clean end. */
const EXIT_GRACE_MS = 100;
/** After one side's EOF, how long socat keeps copying the other way (its default, 0.5 s, would
 * cut a long response to a client that half-closed after its request). */
const HALF_CLOSE_SECONDS = '3600';

export interface ForwardOptions {
  netnsPath?: string;
  port: number;
  podId: string;
  /** The client's data stream for this connection. */
  data: Duplex;
  /** Where a failure is reported (the connection's error stream); ended when the connection is done. */
  error: Writable;
  log: Logger;
  /** End the whole connection once the pod side has closed (transports without half-close). */
  endOnPodEof?: boolean;
}

/** Forwards one connection; resolves when both directions are done (or it failed). */
export function forwardConnection(o: ForwardOptions): Promise<void> {
  const target = `TCP4:127.0.0.1:${o.port}`;
  const [cmd, args] = o.netnsPath
    ? [
        'nsenter',
        [`--net=${o.netnsPath}`, '--', 'socat', '-t', HALF_CLOSE_SECONDS, 'STDIO,shut-down', target],
      ]
    : ['socat', ['-t', HALF_CLOSE_SECONDS, 'STDIO,shut-down', target]];
  return new Promise<void>((resolve) => {
    const child = spawnProcess(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: runtimeEnv(),
    });
    let stderr = '';
    let settled = false;
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    };
    child.stderr?.on('data', (c: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += c.toString('utf8');
    });
    child.stdin?.on('error', () => undefined);
    o.data.on('error', () => kill());
    // The client reset or lost the stream: end the connection in the pod at once.
    o.data.on('close', () => {
      if (!o.data.readableEnded) kill();
    });
    o.data.pipe(child.stdin!);
    child.stdout?.on('data', (c: Buffer) => {
      if (o.data.destroyed) return;
      if (!o.data.write(c)) {
        child.stdout?.pause();
        o.data.once('drain', () => child.stdout?.resume());
      }
    });
    child.stdout?.on('end', () => {
      // A failed connect also closes socat's stdout: give its exit status a moment to arrive,
      // so that the failure, not a clean end, is what the client sees.
      const endData = (): void => {
        clearTimeout(t);
        child.off('exit', endData);
        if (settled || child.exitCode) return; // finish() reports the failure
        if (!o.data.destroyed) o.data.end();
        if (o.endOnPodEof) kill();
      };
      const t = setTimeout(endData, EXIT_GRACE_MS);
      child.once('exit', () => setImmediate(endData));
    });
    const finish = (code: number | null): void => {
      if (settled) return;
      settled = true;
      if (code !== 0 && code !== null && !o.data.destroyed && !o.data.writableEnded) {
        const msg = `error forwarding port ${o.port} to pod ${o.podId}: ${lastLine(stderr) || `socat exited with ${code}`}`;
        o.log.debug('port-forward connection failed', { port: o.port, error: msg });
        // The error stream finishes first, so the client knows why before its data stream ends.
        if (!o.error.destroyed) o.error.end(msg);
        if (!o.data.destroyed) o.data.end();
      }
      // A clean exit ends the data stream here too, whichever of stdout's EOF and the exit was
      // seen first (the EOF handler may still be waiting for the exit status).
      if (code === 0 && !o.data.destroyed && !o.data.writableEnded) o.data.end();
      if (!o.error.destroyed && !o.error.writableEnded) o.error.end();
      resolve();
    };
    child.on('error', (err) => {
      stderr += err.message;
      finish(1);
    });
    child.on('close', (code) => finish(code));
  });
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  // socat: "2024/01/01 00:00:00 socat[123] E connect(5, AF=2 127.0.0.1:81, 16): Connection refused"
  return (lines[lines.length - 1] ?? '').replace(/^.*socat\[\d+\] [EW] /, '').slice(0, 300);
}
