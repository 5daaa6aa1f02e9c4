// A loopback HTTP proxy in front of a lab registry that slows response bodies down to a set rate,
// so tests can act in the middle of a pull (kill -9 berthd, cancel, time out).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ThrottleProxy {
  host: string;
  url: string;
  /** bytes of response bodies sent so far */
  sent(): number;
  stop(): Promise<void>;
}

export async function startThrottleProxy(upstream: string, bytesPerSecond: number): Promise<ThrottleProxy> {
  const target = new URL(upstream);
  let sent = 0;
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const up = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        const chunkSize = Math.max(1, Math.floor(bytesPerSecond / 20));
        let queue: Buffer[] = [];
        let ended = false;
        const pump = (): void => {
          let budget = chunkSize;
          while (budget > 0 && queue.length) {
            const b = queue[0];
            const n = Math.min(budget, b.length);
            res.write(b.subarray(0, n));
            sent += n;
            budget -= n;
            if (n === b.length) queue.shift();
            else queue[0] = b.subarray(n);
          }
          if (queue.length === 0 && ended) {
            clearInterval(timer);
            res.end();
          } else if (queue.length > 8) ur.pause();
          else ur.resume();
        };
        const timer = setInterval(pump, 50);
        ur.on('data', (b: Buffer) => queue.push(b));
        ur.on('end', () => (ended = true));
        res.on('close', () => {
          clearInterval(timer);
          queue = [];
          ur.destroy();
        });
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    sent: () => sent,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
