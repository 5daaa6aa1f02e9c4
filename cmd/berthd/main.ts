#!/usr/bin/env -S node
// berthd: the Berth CRI daemon. Flags override the config file; see `berthd --help`.
// Node flags put on the line above apply wherever berthd runs as a command (the systemd unit,
// berth-up.sh, the test harness). None is set: a 1 MB young-generation semi-space saved ~9 MB idle
// and ~20 MB under load, but tripled the garbage collector's share of the loop under kubelet's
// steady load and put its tails over #10's targets (README, "Daemon memory").
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../../internal/config/config';
import { createLogger } from '../../internal/log';
import { startDaemon, berthVersion } from '../../internal/daemon';

const USAGE = `usage: berthd [flags]

Serves the Kubernetes CRI (runtime.v1) on a unix socket.

  --config FILE       config file (TOML or JSON); default /etc/berth/config.toml or .json if present
  --socket PATH       unix socket to serve on (default /run/berth/berth.sock, or <state>/berth.sock)
  --root DIR          persistent data: images, layers, records (default /var/lib/berth)
  --state DIR         runtime state: sockets, bundles, netns pins (default /run/berth)
  --log-level LEVEL   error, warn, info or debug (default info)
  --version           print the version and exit
  -h, --help          this text
`;

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string' },
        socket: { type: 'string' },
        root: { type: 'string' },
        state: { type: 'string' },
        'log-level': { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`berthd: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (args.version) {
    process.stdout.write(`berthd ${berthVersion()}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig(args.config, {
      socket: args.socket,
      root: args.root,
      state: args.state,
      log_level: args['log-level'],
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`berthd: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.log_level, config.log_format);
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection (kept running)', { error: String(reason) });
  });
  let daemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (err) {
    log.error(`berthd failed to start: ${(err as Error).message}`);
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal: sig });
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
