// Debian's containerd as a benchmark anchor: a lab registry with the pause and busybox images (the
// same busybox, with the lab users, that the harness gives Berth), containerd in its own root,
// state, socket and CNI network (test/lab/containerd.ts), busybox pulled. cleanup() stops and
// removes all of it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { call, type CriClients } from '../../api/client';
import { startContainerd } from './containerd';
import { busyboxLayer, pushImage, pushPause } from './images';
import { startRegistry } from './registry';

export interface LabContainerd {
  clients: CriClients;
  busybox: string;
  pause: string;
  logDir: string;
  pid: number;
  shimPids(): number[];
  cleanup(): Promise<void>;
}

export async function startLabContainerd(net: { bridge: string; subnet: string }): Promise<LabContainerd> {
  const reg = await startRegistry();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-logs-'));
  const dropAll = async (): Promise<void> => {
    await reg.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
  };
  try {
    await pushPause(reg);
    const busybox = (
      await pushImage(reg, 'library/busybox', 'latest', { layers: [busyboxLayer({ users: true })] })
    ).reference;
    const pause = `${reg.host}/pause:3.10`;
    const c = await startContainerd({ sandboxImage: pause, insecureRegistries: [reg.host], ...net });
    try {
      await call(c.clients.image, 'PullImage', { image: { image: busybox } });
    } catch (err) {
      await c.stop();
      throw err;
    }
    return {
      clients: c.clients,
      busybox,
      pause,
      logDir,
      pid: c.pid,
      shimPids: () => c.shimPids(),
      async cleanup() {
        try {
          await c.stop();
        } finally {
          await dropAll();
        }
      },
    };
  } catch (err) {
    await dropAll();
    throw err;
  }
}
