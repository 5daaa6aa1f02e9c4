// The protocol-neutral shape of one exec/attach session: what the SPDY or WebSocket layer hands
// the backends (exec.ts, attach.ts) once the client's streams are all there.
import type { Readable, Writable } from 'node:stream';
import { ResizeDecoder, type TerminalSize } from './channel';

export interface SessionIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** The raw resize stream (JSON {"Width","Height"} messages), when the client has one. */
  resize?: Readable;
  /** Aborted when the client goes away (connection lost or reset). */
  signal: AbortSignal;
}

/** Calls onSize for each terminal size on the resize stream; bad input ends the watching. */
export function watchResize(resize: Readable | undefined, onSize: (s: TerminalSize) => void): void {
  if (!resize) return;
  const dec = new ResizeDecoder();
  const onData = (chunk: Buffer): void => {
    let sizes: TerminalSize[];
    try {
      sizes = dec.push(chunk);
    } catch {
      resize.off('data', onData);
      resize.resume();
      return;
    }
    for (const s of sizes) if (s.width > 0 && s.height > 0) onSize(s);
  };
  resize.on('data', onData);
  resize.on('error', () => undefined);
}

/**
 * The first terminal size the client sends, if one arrives within `ms` (clients send it right
 * after opening the streams); later sizes go to onLater.
 */
export function firstSize(
  resize: Readable | undefined,
  ms: number,
  onLater: (s: TerminalSize) => void,
): Promise<TerminalSize | undefined> {
  if (!resize) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let first = true;
    const timer = setTimeout(() => {
      if (first) {
        first = false;
        resolve(undefined);
      }
    }, ms);
    watchResize(resize, (s) => {
      if (first) {
        first = false;
        clearTimeout(timer);
        resolve(s);
      } else onLater(s);
    });
  });
}

/** Writes and waits for the write to be taken (backpressure), ignoring a destination that is gone. */
export function writeTo(w: Writable, data: Buffer): Promise<void> {
  if (w.destroyed || w.writableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const ok = w.write(data, () => undefined);
    if (ok) resolve();
    else {
      const done = (): void => {
        w.off('drain', done);
        w.off('close', done);
        resolve();
      };
      w.on('drain', done);
      w.on('close', done);
    }
  });
}

/** How long endOutputs waits for output still queued for a client that does not take it. */
export const OUTPUT_FLUSH_MS = 5000;

/**
 * Ends the session's output streams and resolves once everything written to them has gone to
 * the connection (or they are gone, or `ms` passed). The exit status goes out only after that: a
 * client may hang up as soon as it has the status, and output still queued behind a slow write
 * (flow control, a busy socket) would otherwise be sent after it, or never.
 */
export async function endOutputs(streams: (Writable | undefined)[], ms = OUTPUT_FLUSH_MS): Promise<void> {
  await Promise.all(
    streams.map((w) => {
      if (!w || w.destroyed || w.writableFinished) return undefined;
      return new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        function done(): void {
          clearTimeout(t);
          w?.off('close', done);
          resolve();
        }
        w.once('close', done);
        w.end(done);
      });
    }),
  );
}
