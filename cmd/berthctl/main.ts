#!/usr/bin/env node
// berthctl: a crictl-style client of Berth's CRI socket.
import { connect, type CriClients } from '../../api/client';
import { DEFAULT_ENDPOINT, UsageError, type Out } from './common';
import * as containerCmds from './containers';
import * as imageCmds from './images';
import { logs } from './logs';
import { play } from './play';
import * as podCmds from './pods';
import * as runtimeCmds from './runtime';
import * as streamCmds from './streaming';

/** A command writes to out/err; a number it returns is berthctl's exit code (exec passes its own). */
type Command = (c: CriClients, argv: string[], out: Out, err: Out) => Promise<void | number>;

const COMMANDS: Record<string, { run: Command; help: string }> = {
  version: { run: runtimeCmds.version, help: 'runtime name and versions' },
  info: { run: runtimeCmds.info, help: 'runtime status, handlers and config (JSON)' },
  pull: { run: imageCmds.pull, help: 'pull an image: pull [--creds USER:PASS] IMAGE' },
  images: { run: imageCmds.images, help: 'list images: images [-q] [-o table|json] [--digests] [IMAGE]' },
  inspecti: { run: imageCmds.inspecti, help: 'image status with its config (JSON)' },
  rmi: { run: imageCmds.rmi, help: 'remove images by id, name:tag or name@digest' },
  imagefsinfo: { run: imageCmds.imagefsinfo, help: 'image filesystem usage (JSON)' },
  runp: { run: podCmds.runp, help: 'run a pod: runp [-r|--runtime HANDLER] POD_CONFIG.(json|yaml)' },
  pods: {
    run: podCmds.pods,
    help: 'list pods: pods [-q] [--id ID] [--name RE] [--namespace RE] [-s ready|notready] [--label K=V]... [-o table|json] [--no-trunc]',
  },
  inspectp: { run: podCmds.inspectp, help: 'pod status with verbose info (JSON): inspectp POD-ID...' },
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
    help: 'list containers: ps [-a] [-q] [--id ID] [-p POD] [--name RE] [-s STATE] [--label K=V]... [-o table|json] [--no-trunc]',
  },
  inspect: {
    run: containerCmds.inspect,
    help: 'container status with verbose info (JSON): inspect CONTAINER-ID...',
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
    help: "run a Kubernetes manifest's pods as kubelet would: play [--wait] [--follow] [--down] [--dry-run] [--config-dir DIR] FILE|-",
  },
  run: {
    run: containerCmds.run,
    help: 'pull if needed, run a pod, create and start a container: run [-r HANDLER] CONTAINER_CONFIG POD_CONFIG',
  },
};

function usage(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return (
    'usage: berthctl [--endpoint URL] [--timeout SECONDS] COMMAND [ARGS]\n\n' +
    'Endpoint: --endpoint, -r, or $BERTH_ENDPOINT (default ' +
    DEFAULT_ENDPOINT +
    ')\n\nCommands:\n' +
    names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n].help}`).join('\n') +
    '\n'
  );
}

export async function run(argv: string[], out: Out, err: Out): Promise<number> {
  let endpoint = process.env.BERTH_ENDPOINT || DEFAULT_ENDPOINT;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--endpoint' || a === '-r' || a === '--runtime-endpoint') endpoint = argv[++i] ?? '';
    else if (a.startsWith('--endpoint=')) endpoint = a.slice('--endpoint='.length);
    else if (a === '--timeout' || a === '-t') i++;
    else if (a === '-h' || a === '--help' || a === 'help') {
      out.write(usage());
      return 0;
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
  let clients: CriClients;
  try {
    clients = connect(endpoint);
  } catch (e) {
    err.write(`berthctl: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    return (await cmd.run(clients, argv.slice(i + 1), out, err)) ?? 0;
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
