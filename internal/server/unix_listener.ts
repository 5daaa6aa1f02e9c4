// Serves a grpc-js server on a unix socket that Berth accepts itself: each connection's incoming
// bytes go through the AuthorityRewriter (see h2_authority.ts) before grpc-js's HTTP/2 session
// reads them, so clients that send the socket path (or nothing) as :authority get through.
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { AuthorityRewriter } from './h2_authority';

/** A Duplex over `socket` whose readable side is the socket's bytes after the rewriter. */
export function rewritingStream(socket: net.Socket, onProtocolError?: (err: Error) => void): Duplex {
  const rw = new AuthorityRewriter();
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (socket.destroyed) return cb(new Error('socket closed'));
      socket.write(chunk, cb);
    },
    // http2 hands a response over as several buffers at once (frame headers, data, trailers):
    // corked, they leave in one writev instead of a write syscall each
    writev(chunks: Array<{ chunk: Buffer }>, cb) {
      if (socket.destroyed) return cb(new Error('socket closed'));
      socket.cork();
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i].chunk);
      socket.write(chunks[chunks.length - 1].chunk, cb);
      socket.uncork();
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    let out: Buffer[];
    try {
      out = rw.push(chunk);
    } catch (err) {
      onProtocolError?.(err as Error);
      socket.destroy();
      return;
    }
    let more = true;
    for (const b of out) more = d.push(b) && more;
    if (!more) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('error', (err) => d.destroy(err));
  socket.on('close', () => {
    if (!d.destroyed) d.destroy();
  });
  return d;
}

export interface UnixListener {
  /** Stops accepting connections; the ones open are the grpc server's to drain (tryShutdown). */
  close(): Promise<void>;
}

/** Accepts connections on `socketPath` and hands each, rewritten, to `server`. */
export function listenUnix(
  server: grpc.Server,
  socketPath: string,
  onProtocolError?: (err: Error) => void,
): Promise<UnixListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const srv = net.createServer({ pauseOnConnect: false }, (socket) => {
    injector.injectConnection(rewritingStream(socket, onProtocolError));
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(socketPath, () => {
      srv.off('error', reject);
      resolve({
        close: () =>
          new Promise<void>((res) => {
            srv.close();
            res();
          }),
      });
    });
  });
}
