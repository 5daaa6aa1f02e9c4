// `berthctl play --follow`: keeping played pods alive as kubelet does after their start. Every
// second (kubelet's PLEG relist period) each container's status is read; an exited container is
// restarted per the pod's restartPolicy (a sidecar always) with kubelet's crash back-off (the
// first restart at once, then 10 s doubling to 5 min, reset after 10 min of running); liveness,
// readiness and startup probes run on their own timers, and a failed liveness or startup probe
// kills the container (then restarted per policy). Events are reported as kubelet records them.
import type { V1Probe } from '@kubernetes/client-node';
import { call, type CriClients } from '../../api/client';
import { probeTiming, runProbe } from './probe';
import { isSidecar } from './resources';
import { BACKOFF_RESET_MS, nextBackoff, shouldRestart } from './restart';
import { errText, startContainer, type PlayOptions, type PodRun, type RunningContainer } from './runner';

const RELIST_MS = 1000;

type ProbeKind = 'Liveness' | 'Readiness' | 'Startup';

interface Watched {
  ctr: RunningContainer;
  done: boolean;
  backoffS: number;
  startedAt: number;
  exitedAt?: number;
  backoffReported?: boolean;
  ready: boolean;
  probes?: Prober;
}

/** The probes of one attempt of a container. */
class Prober {
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private started: boolean;

  constructor(
    private readonly c: CriClients,
    private readonly run: PodRun,
    private readonly w: Watched,
    private readonly opts: PlayOptions,
  ) {
    this.started = !w.ctr.spec.startupProbe;
    const spec = w.ctr.spec;
    if (spec.startupProbe) this.schedule('Startup', spec.startupProbe);
    if (spec.livenessProbe) this.schedule('Liveness', spec.livenessProbe);
    if (spec.readinessProbe) this.schedule('Readiness', spec.readinessProbe);
    else w.ready = true;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
  }

  private schedule(kind: ProbeKind, probe: V1Probe): void {
    const t = probeTiming(probe);
    let successes = 0;
    let failures = 0;
    const tick = async (): Promise<void> => {
      if (this.stopped) return;
      if (kind !== 'Startup' && !this.started) {
        this.timers.push(setTimeout(tick, t.periodMs));
        return;
      }
      if (kind === 'Startup' && this.started) return;
      const spec = this.w.ctr.spec;
      const r = await runProbe(this.c, probe, spec, this.w.ctr.id, this.run.ip);
      if (this.stopped) return;
      if (r.ok) {
        failures = 0;
        successes++;
        if (successes >= t.success) {
          if (kind === 'Startup') this.started = true;
          if (kind === 'Readiness' && !this.w.ready) {
            this.w.ready = true;
            this.opts.event({
              pod: this.run.key,
              reason: 'Ready',
              message: `container ${spec.name} is ready`,
            });
          }
        }
      } else {
        successes = 0;
        failures++;
        this.opts.event({
          pod: this.run.key,
          reason: 'Unhealthy',
          message: `${kind} probe failed: ${r.message}`,
          warning: true,
        });
        if (failures >= t.failure) {
          if (kind === 'Readiness') {
            if (this.w.ready)
              this.opts.event({
                pod: this.run.key,
                reason: 'NotReady',
                message: `container ${spec.name} is not ready`,
              });
            this.w.ready = false;
          } else {
            this.stop();
            const grace =
              probe.terminationGracePeriodSeconds ??
              this.run.pp.pod.spec!.terminationGracePeriodSeconds ??
              30;
            this.opts.event({
              pod: this.run.key,
              reason: 'Killing',
              message: `Container ${spec.name} failed ${kind.toLowerCase()} probe, will be restarted`,
            });
            await call(
              this.c.runtime,
              'StopContainer',
              { container_id: this.w.ctr.id, timeout: Math.max(2, grace) },
              (grace + 30) * 1000,
            ).catch((e: unknown) =>
              this.opts.event({
                pod: this.run.key,
                reason: 'FailedKill',
                message: errText(e),
                warning: true,
              }),
            );
            return;
          }
        }
      }
      this.timers.push(setTimeout(tick, t.periodMs));
    };
    this.timers.push(setTimeout(tick, t.initialDelayMs));
  }
}

async function followPod(c: CriClients, run: PodRun, opts: PlayOptions, signal: AbortSignal): Promise<void> {
  const policy = run.pp.pod.spec!.restartPolicy ?? 'Always';
  // completed init containers are not watched; sidecars and app containers are
  const watched: Watched[] = run.containers
    .filter((x) => !x.init || isSidecar(x.spec))
    .map((ctr) => ({ ctr, done: false, backoffS: 0, startedAt: Date.now(), ready: false }));
  for (const w of watched) w.probes = new Prober(c, run, w, opts);
  try {
    while (!signal.aborted) {
      for (const w of watched) {
        if (w.done || signal.aborted) continue;
        const s = (
          await call(c.runtime, 'ContainerStatus', { container_id: w.ctr.id }).catch(() => undefined)
        )?.status;
        if (!s || s.state !== 'CONTAINER_EXITED') continue;
        const name = w.ctr.spec.name;
        if (w.exitedAt === undefined) {
          w.exitedAt = Date.now();
          w.probes?.stop();
          opts.event({
            pod: run.key,
            reason: s.exit_code === 0 ? 'Completed' : 'Died',
            message: `container ${name} exited ${s.exit_code} (${s.reason || 'Error'})`,
            warning: s.exit_code !== 0,
          });
          if (w.exitedAt - w.startedAt > BACKOFF_RESET_MS) w.backoffS = 0;
        }
        if (!shouldRestart(policy, { init: w.ctr.init, sidecar: isSidecar(w.ctr.spec) }, s.exit_code)) {
          w.done = true;
          continue;
        }
        const due = w.exitedAt + w.backoffS * 1000;
        if (Date.now() < due) {
          if (!w.backoffReported) {
            opts.event({
              pod: run.key,
              reason: 'BackOff',
              message: `Back-off ${w.backoffS}s restarting failed container ${name}`,
              warning: true,
            });
            w.backoffReported = true;
          }
          continue;
        }
        // kubelet keeps the last dead container (for its logs) and removes older ones
        for (const old of w.ctr.previous)
          await call(c.runtime, 'RemoveContainer', { container_id: old }).catch(() => undefined);
        w.ctr.previous = [w.ctr.id];
        w.ctr.attempt++;
        try {
          w.ctr.id = await startContainer(c, run, w.ctr.spec, w.ctr.attempt, opts);
        } catch (e) {
          opts.event({
            pod: run.key,
            reason: 'Failed',
            message: `restarting ${name}: ${errText(e)}`,
            warning: true,
          });
        }
        w.backoffS = nextBackoff(w.backoffS);
        w.exitedAt = undefined;
        w.backoffReported = false;
        w.startedAt = Date.now();
        w.ready = false;
        w.probes = new Prober(c, run, w, opts);
      }
      const apps = watched.filter((w) => !w.ctr.init);
      if (apps.every((w) => w.done)) {
        opts.event({ pod: run.key, reason: 'PodDone', message: 'no container will be restarted' });
        return;
      }
      await new Promise<void>((r) => {
        const onAbort = (): void => {
          clearTimeout(t);
          r();
        };
        const t = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          r();
        }, RELIST_MS);
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  } finally {
    for (const w of watched) w.probes?.stop();
  }
}

/** Follows every pod until `signal` aborts (^C) or no pod has a container left to restart. */
export async function followPods(
  c: CriClients,
  runs: PodRun[],
  opts: PlayOptions,
  signal: AbortSignal,
): Promise<void> {
  await Promise.all(runs.map((r) => followPod(c, r, opts, signal)));
}
