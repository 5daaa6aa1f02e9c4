// Serves a grpc-js server on a unix socket that Berth accepts itself: each connection's incoming
// bytes go through the AuthorityRewriter (see h2_authority.ts) before grpc-js's HTTP/2 session
// reads them, so clients that send the socket path (or nothing) as :authority get through.
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { AuthorityRewriter } from './h2_authority';
import { FirstRequestSniffer, SERVER_PREFACE, type Sniffed } from './h2_sniff';

/**
 * A Duplex over `socket` whose readable side is the socket's bytes after the rewriter: first
 * `head.bytes` (what was read while sniffing), then what the socket reads next.
 */
export function rewritingStream(
  socket: net.Socket,
  onProtocolError?: (err: Error) => void,
  head?: { bytes: Buffer; dropSettingsAck: boolean },
): Duplex {
  const rw = new AuthorityRewriter(head?.dropSettingsAck ?? false);
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
  const take = (chunk: Buffer): void => {
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
  };
  if (head?.bytes.length) take(head.bytes);
  socket.on('data', take);
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

/** How long a connection may take to send its first request before it goes to the rewriter. */
export const SNIFF_TIMEOUT_MS = 2000;

/**
 * Accepts connections on `socketPath` and hands each to `server`: straight on the socket when the
 * first request's authority is one nghttp2 accepts, else through the rewriter (h2_sniff.ts).
 */
export function listenUnix(
  server: grpc.Server,
  socketPath: string,
  onProtocolError?: (err: Error) => void,
): Promise<UnixListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const srv = net.createServer({ pauseOnConnect: false }, (socket) => {
    sniffConnection(socket, onProtocolError, (conn) => injector.injectConnection(conn));
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

/**
 * Sends the listener's SETTINGS, reads the client's first request (FirstRequestSniffer), then
 * hands the connection on: the socket itself with the bytes read put back (nghttp2 reads them
 * first), or the rewriting stream.
 */
export function sniffConnection(
  socket: net.Socket,
  onProtocolError: ((err: Error) => void) | undefined,
  hand: (conn: Duplex) => void,
): void {
  const sniffer = new FirstRequestSniffer();
  let done = false;
  const decide = (s: Sniffed): void => {
    done = true;
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    if (s.direct) {
      socket.pause();
      socket.unshift(s.bytes);
      hand(socket);
    } else {
      hand(rewritingStream(socket, onProtocolError, { bytes: s.bytes, dropSettingsAck: !s.ackSeen }));
    }
  };
  const onData = (chunk: Buffer): void => {
    let s: Sniffed | undefined;
    try {
      s = sniffer.push(chunk);
    } catch (err) {
      done = true;
      clearTimeout(timer);
      onProtocolError?.(err as Error);
      socket.destroy();
      return;
    }
    if (s) decide(s);
  };
  // a client that ends before its first request has nothing to be served
  const onEnd = (): void => {
    if (!done) socket.destroy();
  };
  const timer = setTimeout(() => {
    if (!done && !socket.destroyed) decide(sniffer.giveUp());
  }, SNIFF_TIMEOUT_MS);
  timer.unref();
  socket.on('error', () => {
    clearTimeout(timer);
  });
  socket.on('close', () => clearTimeout(timer));
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.write(SERVER_PREFACE);
}
