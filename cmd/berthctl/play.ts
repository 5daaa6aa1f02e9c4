// berthctl play: run a Kubernetes manifest's pods on this node through Berth, with the CRI calls,
// in the order, kubelet's pod sync makes (internal/play has the translation and the sync).
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { CriClients } from '../../api/client';
import { configDirSource } from '../../internal/play/config-dir';
import { followPods } from '../../internal/play/follow';
import { loadManifest } from '../../internal/play/load';
import { podsFromDocuments, type PlayPod } from '../../internal/play/manifest';
import {
  ContainerFailure,
  downPod,
  dryRunRequests,
  errText,
  podLine,
  runPod,
  waitPod,
  type PlayEvent,
  type PlayOptions,
  type PodRun,
} from '../../internal/play/runner';
import { parseResolvConf, type NodeInfo } from '../../internal/play/translate';
import { UsageError, type Out } from './common';
import { intFlag, parseFlags } from './flags';
import { watchPull } from './pull-progress';

export const PLAY_USAGE =
  'play [--wait [--wait-timeout SECONDS]] [--follow] [--config-dir DIR] [--pods-dir DIR] [--log-root DIR] [-q|--quiet] FILE|-\n' +
  '       play --down [--grace-period SECONDS] FILE|-\n' +
  '       play --dry-run FILE|-';

const DEFAULT_PODS_DIR = '/var/lib/berth/play/pods';

function hostIP(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** What the translation needs to know about this node. */
export function nodeInfo(podsDir: string, logRoot: string | undefined): NodeInfo {
  let resolv = { servers: [] as string[], searches: [] as string[], options: [] as string[] };
  try {
    resolv = parseResolvConf(fs.readFileSync('/etc/resolv.conf', 'utf8'));
  } catch {
    // no resolv.conf: empty DNS config
  }
  return {
    name: os.hostname().toLowerCase(),
    hostIP: hostIP(),
    memoryCapacity: os.totalmem(),
    cpuMilli: os.cpus().length * 1000,
    resolv,
    podsDir,
    ...(logRoot ? { logRoot } : {}),
  };
}

function readInput(file: string): string {
  return fs.readFileSync(file === '-' ? 0 : file, 'utf8');
}

/** Events as lines on stderr (a pull's progress is drawn between them: see watchPull). */
function eventPrinter(err: Out, quiet: boolean): (e: PlayEvent) => void {
  return (e) => {
    if (quiet && !e.warning) return;
    const t = new Date().toISOString().slice(11, 19);
    err.write(`${t} ${e.warning ? 'Warning' : 'Normal '} ${e.pod} ${e.reason}: ${e.message}\n`);
  };
}

function reportFailure(f: ContainerFailure, err: Out): number {
  err.write(`berthctl play: ${f.message}\n`);
  if (f.logTail.length)
    err.write(`last log lines of ${f.container}:\n${f.logTail.map((l) => `  ${l}\n`).join('')}`);
  return f.exitCode || 1;
}

export async function play(c: CriClients, argv: string[], out: Out, err: Out): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      wait: { type: 'boolean' },
      'wait-timeout': { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      down: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      'config-dir': { type: 'string' },
      'pods-dir': { type: 'string' },
      'log-root': { type: 'string' },
      'grace-period': { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
    },
    PLAY_USAGE,
  );
  if (positionals.length !== 1) throw new UsageError(PLAY_USAGE);
  if (values.down && values['dry-run']) throw new UsageError(`${PLAY_USAGE}\n--down and --dry-run conflict`);
  if ((values.down || values['dry-run']) && (values.wait || values.follow))
    throw new UsageError(`${PLAY_USAGE}\n--wait and --follow go with a play, not --down or --dry-run`);
  const waitS = intFlag(values['wait-timeout'], 'wait-timeout', PLAY_USAGE) ?? 300;
  const graceS = intFlag(values['grace-period'], 'grace-period', PLAY_USAGE);
  const node = nodeInfo(values['pods-dir'] ?? DEFAULT_PODS_DIR, values['log-root']);
  const opts: PlayOptions = {
    node,
    config: configDirSource(values['config-dir']),
    event: eventPrinter(err, values.quiet ?? false),
    restartInit: values.follow ?? false,
    // as `berthctl pull` shows it: a bar on a terminal (layers, bytes, rate), plain lines otherwise
    watchPull: values.quiet
      ? undefined
      : (image, pulling) =>
          watchPull(c, image, pulling, err, {
            tty: process.stderr.isTTY === true,
            width: process.stderr.columns || 80,
            plainEveryMs: 2000,
          }),
  };

  let pods: PlayPod[];
  try {
    pods = podsFromDocuments(await loadManifest(readInput(positionals[0])));
  } catch (e) {
    err.write(`berthctl play: ${(e as Error).message}\n`);
    return 1;
  }
  if (pods.length === 0) {
    err.write('berthctl play: the manifest has no documents\n');
    return 1;
  }

  if (values['dry-run']) {
    const requests = [];
    for (const pp of pods)
      requests.push(
        ...dryRunRequests(pp, opts).map((r) => ({
          pod: `${pp.pod.metadata!.namespace}/${pp.pod.metadata!.name}`,
          ...r,
        })),
      );
    out.write(JSON.stringify(requests, null, 2) + '\n');
    return 0;
  }

  if (values.down) {
    let code = 0;
    for (const pp of pods) {
      try {
        const r = await downPod(c, pp, { ...opts, gracePeriodS: graceS });
        out.write(
          `${r.key}\t${r.sandboxes.length ? `removed ${r.sandboxes.map((s) => s.slice(0, 13)).join(' ')}` : 'no pod'}\n`,
        );
      } catch (e) {
        err.write(`berthctl play --down: ${pp.source}: ${errText(e)}\n`);
        code = 1;
      }
    }
    return code;
  }

  const runs: PodRun[] = [];
  let code = 0;
  for (const pp of pods) {
    try {
      await runPod(c, pp, opts, runs);
    } catch (e) {
      if (e instanceof ContainerFailure) code = reportFailure(e, err);
      else {
        err.write(`berthctl play: ${pp.source}: ${errText(e)}\n`);
        code = 1;
      }
      if (runs.some((r) => r.pp === pp))
        err.write(`berthctl play: ${pp.source}: the pod is left for inspection; --down FILE removes it\n`);
    }
  }
  if (values.wait && code === 0) {
    const deadline = Date.now() + waitS * 1000;
    for (const run of runs) {
      try {
        await waitPod(c, run, deadline);
      } catch (e) {
        if (e instanceof ContainerFailure) code = reportFailure(e, err);
        else {
          err.write(`berthctl play: ${errText(e)}\n`);
          code = 1;
        }
      }
    }
  }
  for (const run of runs) out.write((await podLine(c, run)) + '\n');
  if (!values.follow || runs.length === 0) return code;

  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await followPods(c, runs, opts, ac.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  for (const run of runs) out.write((await podLine(c, run)) + '\n');
  return code;
}
