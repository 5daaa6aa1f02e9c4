// Exec/attach and port-forward over a WebSocket, in kubelet's channel framing (channel.ts):
// exec channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; port-forward channels 2i (data)
// and 2i+1 (error) for the i-th port, each opened by the port number as its first message.
import type { WebSocket } from 'ws';
import type { Logger } from '../log';
import {
  Channel,
  WsChannelMux,
  encodeErrorStream,
  encodePortPrefix,
  portForwardChannels,
  type WsChannelProtocol,
} from './channel';
import { forwardConnection } from './portforward';
import type { ExecBackend } from './spdy-session';
import { endOutputs } from './session-io';
import type { AttachTarget, ExecTarget, PortForwardTarget } from './types';

export async function serveWsExec(
  ws: WebSocket,
  proto: WsChannelProtocol,
  target: ExecTarget | AttachTarget,
  run: ExecBackend,
  log: Logger,
): Promise<void> {
  const mux = new WsChannelMux(ws, proto);
  const ac = new AbortController();
  mux.on('close', () => ac.abort());
  const stdin = target.stdin ? mux.channel(Channel.STDIN) : undefined;
  const stdout = target.stdout ? mux.channel(Channel.STDOUT) : undefined;
  const stderr = target.stderr && !target.tty ? mux.channel(Channel.STDERR) : undefined;
  const error = mux.channel(Channel.ERROR);
  const resize = target.tty ? mux.channel(Channel.RESIZE) : undefined;
  let status;
  try {
    status = await run({ stdin, stdout, stderr, resize, signal: ac.signal });
  } catch (err) {
    log.warn('streaming session failed', { error: String(err) });
    mux.close(1011, 'internal error');
    return;
  }
  if (ac.signal.aborted) return;
  // all of the output, then the status (endOutputs says why)
  await endOutputs([stdout, stderr]);
  if (ac.signal.aborted) return;
  const payload = encodeErrorStream(status, proto.name || 'channel.k8s.io');
  if (payload) error.write(payload);
  // Queued messages go out before the close frame.
  await new Promise<void>((resolve) => error.end(() => resolve()));
  mux.close(1000);
}

export function serveWsPortForward(
  ws: WebSocket,
  proto: WsChannelProtocol,
  target: PortForwardTarget,
  ports: number[],
  log: Logger,
): Promise<void> {
  const mux = new WsChannelMux(ws, proto);
  const running = ports.map((port, i) => {
    const ch = portForwardChannels(i);
    const data = mux.channel(ch.data);
    const error = mux.channel(ch.error);
    mux.send(ch.data, encodePortPrefix(port));
    mux.send(ch.error, encodePortPrefix(port));
    return forwardConnection({
      netnsPath: target.netnsPath,
      port,
      podId: target.podId,
      data,
      error,
      log,
      endOnPodEof: !proto.closeSignal,
    });
  });
  return new Promise<void>((resolve) => {
    mux.on('close', () => resolve());
    // One connection per port per WebSocket: once all are done, so is the session.
    void Promise.all(running).then(() => mux.close(1000));
  });
}
