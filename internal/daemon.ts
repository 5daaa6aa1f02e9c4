// Builds and starts a whole berthd from a Config: the parts under internal/, wired together, then
// the gRPC server. cmd/berthd is only flag parsing and signal handling around this.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Config } from './config/config';
import type { Logger } from './log';
import { OverlaySnapshotter } from './snapshot/overlay';
import { LocalImageStore } from './image/store';
import { serve, type RunningServer } from './server/server';
import type { ServerDeps } from './server/deps';

export interface Daemon {
  deps: ServerDeps;
  server: RunningServer;
  stop(): Promise<void>;
}

export function berthVersion(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version: string }).version;
    dir = path.dirname(dir);
  }
  return 'unknown';
}

export async function startDaemon(config: Config, log: Logger): Promise<Daemon> {
  fs.mkdirSync(config.root, { recursive: true, mode: 0o711 });
  fs.mkdirSync(config.state, { recursive: true, mode: 0o711 });
  const snapshotter = new OverlaySnapshotter({
    root: path.join(config.root, 'snapshots'),
    log: log.child({ component: 'snapshot' }),
  });
  await snapshotter.init();
  const images = new LocalImageStore({
    root: config.root,
    config,
    snapshotter,
    log: log.child({ component: 'image' }),
  });
  await images.init();
  const deps: ServerDeps = { config, log, images, version: berthVersion() };
  const server = await serve(deps);
  log.info('berthd serving CRI', { socket: config.socket, root: config.root, state: config.state });
  return {
    deps,
    server,
    async stop() {
      await server.close();
    },
  };
}
