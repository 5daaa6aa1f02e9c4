// Pushes the lab's busybox and pause images into a running registry, for a machine without
// internet: `node dist/test/lab/seed.js http://127.0.0.1:5000` (scripts/local-registry.sh runs it).
// The images are built from Debian's busybox-static, exactly as the tests build them.
import type { LabRegistry } from './registry';
import { pushBusybox, pushPause } from './images';

async function main(): Promise<void> {
  const url = process.argv[2];
  if (!url || !/^http:\/\/[^/]+$/.test(url)) throw new Error('usage: seed.js http://HOST:PORT');
  const reg = { url, host: url.slice('http://'.length) } as LabRegistry;
  const busybox = await pushBusybox(reg);
  const pause = await pushPause(reg);
  process.stdout.write(`pushed ${busybox.reference}\npushed ${pause.reference}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`seed: ${String(err)}\n`);
  process.exit(1);
});
