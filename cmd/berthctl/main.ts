#!/usr/bin/env node
// berthctl: a crictl-style client of Berth's CRI socket.
import { connect, type CriClients } from '../../api/client';
import { DEFAULT_ENDPOINT, UsageError, type Out } from './common';
import * as containerCmds from './containers';
import { DEFAULT_CONFIG_FILE, readCrictlFile, resolveConnection, type Connection } from './crictl-config';
import { events } from './events';
import * as imageCmds from './images';
import { logs } from './logs';
import { play } from './play';
import * as podCmds from './pods';
import * as runtimeCmds from './runtime';
import * as statsCmds from './stats';
import * as streamCmds from './streaming';
import { update, UPDATE_USAGE } from './update';

/** A command writes to out/err; a number it returns is berthctl's exit code (exec passes its own). */
type Command = (c: CriClients, argv: string[], out: Out, err: Out) => Promise<void | number>;

const COMMANDS: Record<string, { run: Command; help: string; lazyConnect?: boolean }> = {
  version: { run: runtimeCmds.version, help: 'runtime name and versions' },
  info: { run: runtimeCmds.info, help: 'runtime status, handlers and config: info [-o json|yaml]' },
  pull: {
    run: imageCmds.pull,
    help:
      'pull an image, with a progress bar on a terminal (plain lines otherwise): ' +
      'pull [--creds USER[:PASS]] [--auth BASE64] [--progress auto|bar|plain|none] IMAGE',
  },
  images: {
    run: imageCmds.images,
    help: 'list images: images [-q] [-o table|json|yaml] [--digests] [IMAGE]',
  },
  inspecti: {
    run: imageCmds.inspecti,
    help: 'image status with its config: inspecti [-o json|yaml] IMAGE...',
  },
  rmi: {
    run: imageCmds.rmi,
    help:
      'remove images by id, name:tag or name@digest; --prune: every image no container uses; ' +
      '--all: every image: rmi [-a|--all] [--prune] [IMAGE...]',
  },
  imagefsinfo: { run: imageCmds.imagefsinfo, help: 'image filesystem usage: imagefsinfo [-o json|yaml]' },
  runp: { run: podCmds.runp, help: 'run a pod: runp [-r|--runtime HANDLER] POD_CONFIG.(json|yaml)' },
  pods: {
    run: podCmds.pods,
    help: 'list pods: pods [-q] [--id ID] [--name RE] [--namespace RE] [-s ready|notready] [--label K=V]... [-o table|json|yaml] [--no-trunc]',
  },
  inspectp: {
    run: podCmds.inspectp,
    help: 'pod status with verbose info: inspectp [-o json|yaml] POD-ID...',
  },
  stopp: { run: podCmds.stopp, help: 'stop pods: stopp POD-ID...' },
  rmp: { run: podCmds.rmp, help: 'remove pods: rmp [-f] [-a|--all] POD-ID...' },
  create: {
    run: containerCmds.create,
    help: 'create a container: create [--pull] POD-ID CONTAINER_CONFIG POD_CONFIG',
  },
  start: { run: containerCmds.start, help: 'start created containers: start CONTAINER-ID...' },
  stop: { run: containerCmds.stop, help: 'stop containers: stop [-t SECONDS] [-a|--all] CONTAINER-ID...' },
  rm: {
    run: containerCmds.rm,
    help: 'remove containers: rm [-f] [-k|--keep-logs] [-a|--all] CONTAINER-ID...',
  },
  ps: {
    run: containerCmds.ps,
    help: 'list containers: ps [-a] [-q] [--id ID] [-p POD] [--name RE] [-s STATE] [--label K=V]... [-o table|json|yaml] [--no-trunc]',
  },
  inspect: {
    run: containerCmds.inspect,
    help: 'container status with verbose info: inspect [-o json|yaml] CONTAINER-ID...',
  },
  exec: {
    run: containerCmds.exec,
    help: 'run a command in a container: exec [-i] [-t] [--transport spdy|websocket] [-s] [--timeout SECONDS] CONTAINER-ID CMD [ARG...]',
  },
  attach: {
    run: streamCmds.attach,
    help: "attach to a container's main process: attach [-i] [-t] [--transport spdy|websocket] CONTAINER-ID",
  },
  'port-forward': {
    run: streamCmds.portForward,
    help: 'forward 127.0.0.1 ports into a pod until ^C: port-forward [--transport spdy|websocket] POD-ID [LOCAL:]REMOTE...',
  },
  logs: {
    run: logs,
    help: 'container logs: logs [-f] [--tail N] [-t|--timestamps] [--since T] CONTAINER-ID',
  },
  play: {
    run: play,
    // --dry-run talks to no daemon, and usage errors come first: play connects when it calls
    lazyConnect: true,
    help: "run a Kubernetes manifest's pods as kubelet would: play [--wait] [--follow] [--down] [--dry-run] [--config-dir DIR] FILE|-",
  },
  run: {
    run: containerCmds.run,
    help:
      'pull if needed, run a pod, create and start a container: ' +
      'run [-r|--runtime HANDLER] [--no-pull] [--creds USER[:PASS]] [--auth BASE64] CONTAINER_CONFIG POD_CONFIG',
  },
  stats: {
    run: statsCmds.stats,
    help:
      'container resource usage: stats [-a|--all] [--id ID] [-p|--pod POD-ID] [--label K=V]... ' +
      '[-o table|json|yaml] [-w|--watch] [-s|--seconds N] [--no-trunc] [CONTAINER-ID]',
  },
  statsp: {
    run: statsCmds.statsp,
    help:
      'pod resource usage: statsp [--id POD-ID] [--label K=V]... [-o table|json|yaml] ' +
      '[-w|--watch] [-s|--seconds N] [--no-trunc] [POD-ID]',
  },
  events: {
    run: events,
    help: 'stream container events until ^C: events [-o table|json|yaml] [--no-trunc]',
  },
  update: { run: update, help: `update a container's resources: ${UPDATE_USAGE}` },
};

/** Flags every command takes before its name, as crictl's global flags. */
const GLOBAL_FLAGS = `Global flags (before COMMAND):
  -r, --runtime-endpoint, --endpoint URL   runtime socket (unix:///path or /path)
  -i, --image-endpoint URL                 image service socket (default: the runtime's)
  -t, --timeout SECONDS|DURATION           how long to wait for the socket to answer (default 2s)
  -c, --config FILE                        crictl config file (default ${DEFAULT_CONFIG_FILE}, or $CRI_CONFIG_FILE)
  -h, --help                               this text; COMMAND --help shows a command's flags

Settings come from the flag, else $CONTAINER_RUNTIME_ENDPOINT / $IMAGE_SERVICE_ENDPOINT
($BERTH_ENDPOINT is also read for the runtime), else the config file's runtime-endpoint,
image-endpoint and timeout, else ${DEFAULT_ENDPOINT} and 2s.
`;

function usage(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return (
    'usage: berthctl [GLOBAL FLAGS] COMMAND [ARGS]\n\n' +
    GLOBAL_FLAGS +
    '\nCommands:\n' +
    names.map((n) => `  ${n.padEnd(w)}  ${summaryOf(COMMANDS[n].help)}`).join('\n') +
    '\n'
  );
}

/** A command's one-line summary: its help text before the usage line. */
function summaryOf(help: string): string {
  const i = help.lastIndexOf(': ');
  return i < 0 ? help : help.slice(0, i);
}

/** `COMMAND --help`: what it does and its flags. */
function commandHelp(name: string): string {
  const help = COMMANDS[name].help;
  const i = help.lastIndexOf(': ');
  const [what, line] = i < 0 ? [help, name] : [help.slice(0, i), help.slice(i + 2)];
  return `usage: berthctl [GLOBAL FLAGS] ${line}\n\n${what}\n`;
}

/** --help among a command's flags (for exec and attach only before the container id). */
function wantsHelp(name: string, argv: string[]): boolean {
  if (name === 'exec' || name === 'attach') return argv[0] === '--help' || argv[0] === '-h';
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Waits until both services' sockets accept a connection, or the timeout passes. */
function waitConnected(clients: CriClients, conn: Connection): Promise<void> {
  const deadline = Date.now() + conn.timeoutSeconds * 1000;
  const one = (client: CriClients['runtime'] | CriClients['image'], endpoint: string): Promise<void> =>
    new Promise((resolve, reject) =>
      client.waitForReady(deadline, (e) =>
        e
          ? reject(
              new Error(`cannot connect to ${endpoint} within ${conn.timeoutSeconds}s (is berthd running?)`),
            )
          : resolve(),
      ),
    );
  return Promise.all([
    one(clients.runtime, conn.runtimeEndpoint),
    ...(conn.imageEndpoint !== conn.runtimeEndpoint ? [one(clients.image, conn.imageEndpoint)] : []),
  ]).then(() => undefined);
}

export async function run(argv: string[], out: Out, err: Out): Promise<number> {
  const flags: { runtimeEndpoint?: string; imageEndpoint?: string; timeout?: string; config?: string } = {};
  let i = 0;
  // --name=value or --name value
  const value = (a: string, names: string[]): string | undefined => {
    for (const n of names) {
      if (a === n) return argv[++i] ?? '';
      if (n.startsWith('--') && a.startsWith(n + '=')) return a.slice(n.length + 1);
    }
    return undefined;
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    let v: string | undefined;
    if ((v = value(a, ['--runtime-endpoint', '--endpoint', '-r'])) !== undefined) flags.runtimeEndpoint = v;
    else if ((v = value(a, ['--image-endpoint', '-i'])) !== undefined) flags.imageEndpoint = v;
    else if ((v = value(a, ['--timeout', '-t'])) !== undefined) flags.timeout = v;
    else if ((v = value(a, ['--config', '-c'])) !== undefined) flags.config = v;
    else if (a === '-h' || a === '--help' || a === 'help') {
      out.write(usage());
      return 0;
    } else if (a.startsWith('-')) {
      err.write(`berthctl: unknown global flag ${a}\n\n${usage()}`);
      return 2;
    } else break;
  }
  const name = argv[i];
  if (!name) {
    err.write(usage());
    return 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    err.write(`berthctl: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  const args = argv.slice(i + 1);
  if (wantsHelp(name, args)) {
    out.write(commandHelp(name));
    return 0;
  }
  let conn: Connection;
  let clients: CriClients;
  try {
    conn = resolveConnection(flags, process.env, readCrictlFile(flags.config, process.env));
    clients = connect(conn.runtimeEndpoint, conn.imageEndpoint);
  } catch (e) {
    err.write(`berthctl: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    if (!cmd.lazyConnect) await waitConnected(clients, conn);
    return (await cmd.run(clients, args, out, err)) ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err.write(`usage: berthctl ${e.message}\n`);
      return 2;
    }
    const details = (e as { details?: string }).details;
    err.write(`berthctl ${name}: ${details || (e as Error).message}\n`);
    return 1;
  } finally {
    clients.close();
  }
}

if (require.main === module) {
  run(
    process.argv.slice(2),
    { write: (s) => process.stdout.write(s) },
    { write: (s) => process.stderr.write(s) },
  ).then((code) => {
    process.exitCode = code;
  });
}
