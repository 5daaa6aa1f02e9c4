// Pull benchmark: a ~200 MB, 5-layer image from a local registry into a fresh berthd.
// Prints the wall time, MB/s (compressed bytes transferred and unpacked), and berthd's peak RSS.
// Run: npm run bench -- pull   (needs root, like the tests)
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { call } from '../../api/client';
import { startBerthd } from '../lab/berthd';
import { startRegistry } from '../lab/registry';
import { busyboxLayer, pushImage } from '../lab/images';
import { makeTar, type TarEntry } from '../lab/tar';

function rssKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** A layer of many files: half random bytes (incompressible), half text (compressible). */
async function layer(i: number, mb: number): Promise<Buffer> {
  const entries: TarEntry[] = [{ path: `data${i}/`, type: 'dir' }];
  const files = 200;
  const per = Math.floor((mb * 1024 * 1024) / files);
  for (let f = 0; f < files; f++) {
    const content =
      f % 2 === 0
        ? crypto.randomBytes(per)
        : Buffer.from(`line ${f} of layer ${i}\n`.repeat(per / 20).slice(0, per));
    entries.push({ path: `data${i}/f${f}.bin`, content });
  }
  return makeTar(entries);
}

async function main(): Promise<void> {
  const reg = await startRegistry();
  const d = await startBerthd({ log_level: 'info' });
  try {
    process.stdout.write('building and pushing the image...\n');
    const layers = [busyboxLayer(), ...(await Promise.all([0, 1, 2, 3].map((i) => layer(i, 95))))];
    const pushed = await pushImage(reg, 'bench/big', 'v1', { layers, compression: 'gzip' });
    const bytes = pushed.layers.reduce((n, l) => n + l.size, 0);
    const unpacked = layers.reduce((n, l) => n + l.length, 0);
    const rssBefore = rssKb(d.proc.pid!, 'VmRSS');
    const t0 = process.hrtime.bigint();
    await call(d.clients.image, 'PullImage', { image: { image: pushed.reference } });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const peak = rssKb(d.proc.pid!, 'VmHWM');
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    process.stdout.write(
      [
        `image: ${pushed.layers.length} layers, ${mb(bytes)} MB compressed, ${mb(unpacked)} MB unpacked`,
        `pull: ${secs.toFixed(2)} s`,
        `throughput: ${(bytes / 1e6 / secs).toFixed(1)} MB/s compressed, ${(unpacked / 1e6 / secs).toFixed(1)} MB/s unpacked`,
        `berthd RSS: ${(rssBefore / 1024).toFixed(0)} MB before, peak ${(peak / 1024).toFixed(0)} MB`,
      ].join('\n') + '\n',
    );
  } finally {
    await d.cleanup();
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
