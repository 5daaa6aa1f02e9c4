// Attach: to the container's main process through conmon's attach socket (SOCK_SEQPACKET, via
// the native addon). conmon prefixes every packet it sends with the pipe it came from (2 stdout,
// 3 stderr) and writes whatever a client sends to the container's stdin; a client's shutdown of
// its write side makes conmon close that stdin unless it runs with --leave-stdin-open (which
// Berth passes unless the container asked for stdin_once). Only output produced after we connect
// arrives: nothing already logged is replayed. Each attach is its own connection, so several
// clients can attach at once. Resize goes to conmon's ctl FIFO as `1 <height> <width>\n`.
import { constants as fsc, promises as fsp } from 'node:fs';
import type { Logger } from '../log';
import { internalErrorStatus, successStatus, type K8sStatus } from './channel';
import { SeqpacketSocket } from './native-io';
import { watchResize, type SessionIO } from './session-io';
import type { AttachTarget } from './types';

// conmon's stdpipe_t: 1 is stdin, 2 stdout, 3 stderr (CRI-O's AttachPipeStdout/Stderr agree).
const PIPE_STDOUT = 2;
const PIPE_STDERR = 3;
/** conmon reads client packets into a 32 KiB buffer; keep stdin packets well inside it. */
const STDIN_PACKET = 8192;
/** conmon refuses sizes beyond this. */
const MAX_CONMON_SIZE = 1000;

export function runAttach(t: AttachTarget, io: SessionIO, log: Logger): Promise<K8sStatus> {
  let sock: SeqpacketSocket;
  try {
    sock = new SeqpacketSocket(t.attachSocket);
  } catch (err) {
    return Promise.resolve(internalErrorStatus(`cannot attach to the container: ${String(err)}`));
  }
  if (t.tty) {
    watchResize(io.resize, (s) => {
      const msg = `1 ${Math.min(s.height, MAX_CONMON_SIZE)} ${Math.min(s.width, MAX_CONMON_SIZE)}\n`;
      void writeCtl(t.ctlFifo, msg).catch((err: Error) =>
        log.debug('attach resize failed', { error: err.message }),
      );
    });
  }
  return new Promise<K8sStatus>((resolve) => {
    let done = false;
    const finish = (status: K8sStatus): void => {
      if (done) return;
      done = true;
      io.signal.removeEventListener('abort', onAbort);
      io.stdin?.off('data', onStdin);
      sock.close();
      resolve(status);
    };
    const onAbort = (): void => finish(internalErrorStatus('client disconnected'));
    io.signal.addEventListener('abort', onAbort, { once: true });

    sock.on('packet', (pkt: Buffer) => {
      const dest =
        pkt[0] === PIPE_STDERR
          ? t.tty
            ? io.stdout
            : io.stderr
          : pkt[0] === PIPE_STDOUT
            ? io.stdout
            : undefined;
      if (!dest || dest.destroyed || pkt.length < 2) return;
      if (!dest.write(pkt.subarray(1))) {
        sock.setReading(false);
        const go = (): void => {
          dest.off('drain', go);
          dest.off('close', go);
          sock.setReading(true);
        };
        dest.on('drain', go);
        dest.on('close', go);
      }
    });
    // conmon closes our connection when the container (and so conmon) ends.
    sock.on('end', () => finish(successStatus()));
    sock.on('error', (err: Error) => finish(internalErrorStatus(err.message)));

    const onStdin = (chunk: Buffer): void => {
      for (let off = 0; off < chunk.length; off += STDIN_PACKET) {
        io.stdin?.pause();
        sock.write(chunk.subarray(off, off + STDIN_PACKET), () => io.stdin?.resume());
      }
    };
    if (io.stdin) {
      io.stdin.on('data', onStdin);
      io.stdin.on('end', () => sock.shutdownWrite());
      io.stdin.on('error', () => undefined);
    }
  });
}

async function writeCtl(fifo: string, msg: string): Promise<void> {
  // Non-blocking: with conmon gone there is no reader and the open fails instead of hanging.
  const fh = await fsp.open(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK);
  try {
    await fh.write(msg);
  } finally {
    await fh.close();
  }
}
