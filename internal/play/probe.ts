// kubelet's probes, run from the node as kubelet runs them: exec through the runtime (ExecSync),
// httpGet and tcpSocket against the pod's IP. A result is success or failure with a message.
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { V1Container, V1Probe } from '@kubernetes/client-node';
import { call, type CriClients } from '../../api/client';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

/** A probe's port: a number, or the name of one of the container's ports. */
export function resolvePort(port: number | string, c: V1Container): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = c.ports?.find((x) => x.name === port);
  if (!p) throw new Error(`port ${JSON.stringify(port)} is not a named port of container ${c.name}`);
  return p.containerPort;
}

/** The probe's timing with Kubernetes' defaults. */
export function probeTiming(p: V1Probe): {
  initialDelayMs: number;
  periodMs: number;
  timeoutS: number;
  success: number;
  failure: number;
} {
  return {
    initialDelayMs: (p.initialDelaySeconds ?? 0) * 1000,
    periodMs: (p.periodSeconds ?? 10) * 1000,
    timeoutS: p.timeoutSeconds ?? 1,
    success: p.successThreshold ?? 1,
    failure: p.failureThreshold ?? 3,
  };
}

function httpProbe(url: URL, headers: Record<string, string>, timeoutS: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(
      url,
      {
        headers: { 'User-Agent': 'kube-probe/berthctl', ...headers },
        timeout: timeoutS * 1000,
        rejectUnauthorized: false,
      },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(
          code >= 200 && code < 400
            ? { ok: true, message: `HTTP ${code}` }
            : { ok: false, message: `HTTP probe failed with statuscode: ${code}` },
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutS}s`)));
    req.on('error', (e) => resolve({ ok: false, message: `Get "${url.href}": ${e.message}` }));
  });
}

function tcpProbe(host: string, port: number, timeoutS: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (r: ProbeResult): void => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutS * 1000, () =>
      done({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` }),
    );
    s.on('connect', () => done({ ok: true, message: 'connected' }));
    s.on('error', (e) => done({ ok: false, message: `dial tcp ${host}:${port}: ${e.message}` }));
  });
}

/** One run of a probe against a container (`podIP` empty: host network, so 127.0.0.1). */
export async function runProbe(
  c: CriClients,
  probe: V1Probe,
  ctr: V1Container,
  id: string,
  podIP: string,
): Promise<ProbeResult> {
  const { timeoutS } = probeTiming(probe);
  try {
    if (probe.exec) {
      const r = await call(
        c.runtime,
        'ExecSync',
        { container_id: id, cmd: probe.exec.command ?? [], timeout: timeoutS },
        (timeoutS + 10) * 1000,
      );
      const out = Buffer.concat([Buffer.from(r.stdout), Buffer.from(r.stderr)])
        .toString()
        .trim()
        .slice(0, 200);
      return r.exit_code === 0
        ? { ok: true, message: out }
        : { ok: false, message: `command exited ${r.exit_code}${out ? `: ${out}` : ''}` };
    }
    if (probe.httpGet) {
      const g = probe.httpGet;
      const host = g.host || podIP || '127.0.0.1';
      const port = resolvePort(g.port, ctr);
      const scheme = (g.scheme ?? 'HTTP').toLowerCase();
      const p = g.path ?? '/';
      const url = new URL(
        `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}${p.startsWith('/') ? p : '/' + p}`,
      );
      const headers = Object.fromEntries((g.httpHeaders ?? []).map((h) => [h.name, h.value]));
      return await httpProbe(url, headers, timeoutS);
    }
    if (probe.tcpSocket) {
      return await tcpProbe(
        probe.tcpSocket.host || podIP || '127.0.0.1',
        resolvePort(probe.tcpSocket.port, ctr),
        timeoutS,
      );
    }
    if (probe.grpc) return { ok: false, message: 'grpc probes are not supported by berthctl play' };
    return { ok: false, message: 'the probe has no handler' };
  } catch (e) {
    return { ok: false, message: (e as { details?: string }).details || (e as Error).message };
  }
}
