// Streaming benchmark: exec round-trip latency (Exec RPC + `true` through the streaming server,
// p50/p95 over 100 runs per transport) and port-forward throughput (a 100 MB file from busybox
// httpd in a pod, through one forwarded connection, per transport).
// Run: npm run bench -- streaming   (needs root)
import { Writable, type Duplex } from 'node:stream';
import { call } from '../../api/client';
import {
  portForwardSpdy,
  portForwardWs,
  streamExec,
  type PortForwarder,
  type Transport,
} from '../../internal/streaming/client';
import { startHarness, type Harness } from '../lab/harness';
import { pct } from '../lab/percentiles';

const EXEC_RUNS = 100;
const FILE_MB = 100;
const PF_RUNS = 3;
const TRANSPORTS: Transport[] = ['spdy', 'websocket'];

const discard = (): Writable =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

async function execLatency(h: Harness, id: string, transport: Transport, runs: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const { url } = await call(h.d.clients.runtime, 'Exec', {
      container_id: id,
      cmd: ['true'],
      stdout: true,
      stderr: true,
    });
    const r = await streamExec(url, { transport, stdout: discard(), stderr: discard() });
    if (r.exitCode !== 0) throw new Error(`true exited with ${r.exitCode}`);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return ms;
}

/** Bytes of the HTTP response read from conn after a GET of path. */
function download(conn: Duplex, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    conn.on('data', (c: Buffer) => (n += c.length));
    conn.on('end', () => resolve(n));
    conn.on('error', reject);
    conn.write(`GET ${path} HTTP/1.0\r\nHost: bench\r\n\r\n`);
  });
}

async function throughput(h: Harness, podId: string, transport: Transport): Promise<number[]> {
  const url = async (): Promise<string> =>
    (await call(h.d.clients.runtime, 'PortForward', { pod_sandbox_id: podId, port: [8080] })).url;
  const pf: PortForwarder = transport === 'spdy' ? await portForwardSpdy(await url()) : portForwardWs(url);
  const rates: number[] = [];
  try {
    for (let i = 0; i < PF_RUNS; i++) {
      const t0 = process.hrtime.bigint();
      const n = await download(await pf.connect(8080), '/big');
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (n < FILE_MB * 1024 * 1024) throw new Error(`short download: ${n} bytes`);
      rates.push(n / 1024 / 1024 / s);
    }
  } finally {
    pf.close();
  }
  return rates;
}

async function main(): Promise<void> {
  const h = await startHarness({
    bridge: 'berthbb0',
    subnet: '10.244.0.0/24',
    prefix: 'sb',
    config: { log_level: 'warn' },
  });
  try {
    const pod = h.podConfig();
    const podId = await h.runPod(pod);
    const shell = await h.startCtr(podId, pod, h.ctrConfig('shell', ['sleep', '3600']));
    const web = await h.startCtr(
      podId,
      pod,
      h.ctrConfig('web', [
        'sh',
        '-c',
        `mkdir -p /www && head -c ${FILE_MB * 1024 * 1024} /dev/zero > /www/big.tmp && mv /www/big.tmp /www/big && exec httpd -f -p 8080 -h /www`,
      ]),
    );
    for (let i = 0; ; i++) {
      const r = await h.exec(web, [
        'sh',
        '-c',
        'test -f /www/big && wget -qO /dev/null http://127.0.0.1:8080/big && echo up',
      ]);
      if (r.out.includes('up')) break;
      if (i > 300) throw new Error('httpd did not come up');
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const t of TRANSPORTS) {
      await execLatency(h, shell, t, 5); // warm-up
      const ms = await execLatency(h, shell, t, EXEC_RUNS);
      process.stdout.write(
        `exec \`true\` round trip over ${t.padEnd(9)} (${EXEC_RUNS} runs): ` +
          `p50 ${pct(ms, 50).toFixed(1)} ms   p95 ${pct(ms, 95).toFixed(1)} ms\n`,
      );
    }
    for (const t of TRANSPORTS) {
      const rates = await throughput(h, podId, t);
      process.stdout.write(
        `port-forward ${FILE_MB} MB over ${t.padEnd(9)}: ` +
          `${rates.map((r) => r.toFixed(0)).join(', ')} MB/s (best ${Math.max(...rates).toFixed(0)})\n`,
      );
    }
  } finally {
    await h.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
