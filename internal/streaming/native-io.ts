// Node-side wrappers over native/src/socket.c: a SOCK_SEQPACKET client (conmon's attach socket,
// which libuv cannot wrap) watched on Node's own loop, and pseudo-terminal helpers.
import { closeSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { native } from '../util/native';

interface SocketNative {
  seqpacketConnect(path: string): number;
  /** One packet; an empty Buffer at EOF; null when it would block. */
  recv(fd: number, maxLen: number): Buffer | null;
  /** Bytes sent, or -1 when it would block. */
  send(fd: number, data: Buffer): number;
  shutdown(fd: number, how: number): void;
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): object;
  pollUpdate(handle: object, events: number): void;
  pollStop(handle: object): void;
  openpty(rows: number, cols: number): [number, number];
  setWinsize(fd: number, rows: number, cols: number): void;
}

function io(): SocketNative {
  return native() as unknown as SocketNative;
}

const READABLE = 1;
const WRITABLE = 2;
/** conmon sends at most its buffer (32 KiB + the pipe byte) per packet; leave room. */
const MAX_PACKET = 64 * 1024;

/**
 * A connected SOCK_SEQPACKET unix socket. Events: 'packet' (Buffer) per packet received, 'end'
 * when the peer closes, 'error'. write() queues packets while the socket is full; its callback
 * runs once the packet is handed to the kernel (that is the backpressure).
 */
export class SeqpacketSocket extends EventEmitter {
  private readonly fd: number;
  private readonly handle: object;
  private readonly queue: { data: Buffer; cb?: (err?: Error) => void }[] = [];
  private reading = true;
  private closed = false;
  private ended = false;

  constructor(path: string) {
    super();
    this.fd = io().seqpacketConnect(path);
    this.handle = io().pollStart(this.fd, READABLE, (status, events) => this.onPoll(status, events));
  }

  /** Stops or resumes reading (backpressure from the consumer). */
  setReading(on: boolean): void {
    if (this.reading === on) return;
    this.reading = on;
    this.updatePoll();
  }

  write(data: Buffer, cb?: (err?: Error) => void): void {
    if (this.closed) {
      cb?.(new Error('socket closed'));
      return;
    }
    this.queue.push({ data, cb });
    this.flush();
  }

  /** shutdown(SHUT_WR): the peer reads EOF (conmon then closes the container's stdin). */
  shutdownWrite(): void {
    if (this.closed) return;
    if (this.queue.length > 0) {
      this.queue.push({ data: Buffer.alloc(0), cb: () => this.shutdownWrite() });
      return;
    }
    try {
      io().shutdown(this.fd, 1);
    } catch {
      // peer gone
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    io().pollStop(this.handle);
    closeSync(this.fd);
    const q = this.queue.splice(0);
    for (const w of q) w.cb?.(new Error('socket closed'));
    this.emit('close');
  }

  private updatePoll(): void {
    if (this.closed) return;
    const ev = (this.reading && !this.ended ? READABLE : 0) | (this.queue.length > 0 ? WRITABLE : 0);
    io().pollUpdate(this.handle, ev);
  }

  private flush(): void {
    while (this.queue.length > 0 && !this.closed) {
      const w = this.queue[0];
      if (w.data.length > 0) {
        let n: number;
        try {
          n = io().send(this.fd, w.data);
        } catch (err) {
          this.queue.shift();
          w.cb?.(err as Error);
          this.emit('error', err);
          return;
        }
        if (n < 0) break;
      }
      this.queue.shift();
      w.cb?.();
    }
    this.updatePoll();
  }

  private onPoll(status: number, events: number): void {
    if (this.closed) return;
    if (status < 0) {
      this.emit('error', new Error(`poll failed (${status})`));
      this.close();
      return;
    }
    if (events & WRITABLE) this.flush();
    if (events & READABLE) {
      while (this.reading && !this.closed && !this.ended) {
        let pkt: Buffer | null;
        try {
          pkt = io().recv(this.fd, MAX_PACKET);
        } catch (err) {
          this.emit('error', err);
          this.close();
          return;
        }
        if (pkt === null) break;
        if (pkt.length === 0) {
          this.ended = true;
          this.updatePoll();
          this.emit('end');
          return;
        }
        this.emit('packet', pkt);
      }
    }
  }
}

/** A pseudo-terminal in raw mode: [master, slave] fds (close-on-exec). */
export function openPty(rows: number, cols: number): { master: number; slave: number } {
  const [master, slave] = io().openpty(clampSize(rows, 24), clampSize(cols, 80));
  return { master, slave };
}

export function setWinsize(fd: number, rows: number, cols: number): void {
  io().setWinsize(fd, clampSize(rows, 24), clampSize(cols, 80));
}

function clampSize(n: number, dflt: number): number {
  if (!Number.isInteger(n) || n <= 0) return dflt;
  return Math.min(n, 0xffff);
}
