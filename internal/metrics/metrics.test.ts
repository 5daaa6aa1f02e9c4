import * as http from 'node:http';
import { codeOf, countStates, POD_STATES } from './metrics';
import { BerthMetrics } from './registry';
import { parseListenAddress, serveMetrics } from './server';
import { notFound } from '../errors';
import type { Logger } from '../log';

/** The value of one sample line (`name{labels} value`) in an exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

const sources = {
  podStates: () => ['ready', 'ready', 'notready'],
  containerStates: () => ['running', 'exited'],
  conmonProcesses: async () => 3,
  loop: () => ({ delay_ms: { p50: 1, p90: 2, p99: 25, max: 40 }, utilization: 0.25 }),
};

describe('BerthMetrics', () => {
  it('counts RPCs by code with a latency histogram', async () => {
    const m = new BerthMetrics();
    m.rpc('PullImage', 'OK', 0.2);
    m.rpc('PullImage', 'NOT_FOUND', 0.01);
    m.rpc('PullImage', 'NOT_FOUND', 0.02);
    const t = await m.text();
    expect(sample(t, 'berth_rpc_requests_total{rpc="PullImage",code="OK"}')).toBe(1);
    expect(sample(t, 'berth_rpc_requests_total{rpc="PullImage",code="NOT_FOUND"}')).toBe(2);
    expect(sample(t, 'berth_rpc_duration_seconds_count{rpc="PullImage"}')).toBe(3);
    expect(sample(t, 'berth_rpc_duration_seconds_bucket{le="0.01",rpc="PullImage"}')).toBe(1);
  });

  it('pulls, failures by reason, unpack bytes, CNI and exec-sync', async () => {
    const m = new BerthMetrics();
    m.pullDone(1000, 1.5);
    m.pullFailed(notFound('nope'), 10);
    m.pullFailed(new Error('boom'), 0);
    m.unpacked(5000);
    m.cniPlugin('ADD', 'bridge', 0.05, true);
    m.cniPlugin('DEL', 'bridge', 0.02, false);
    m.execSync(false);
    m.execSync(true);
    await m.cniOperation('ADD', process.hrtime.bigint(), Promise.resolve(1));
    await expect(
      m.cniOperation('DEL', process.hrtime.bigint(), Promise.reject(new Error('x'))),
    ).rejects.toThrow('x');
    const t = await m.text();
    expect(sample(t, 'berth_cni_operation_duration_seconds_count{op="ADD"}')).toBe(1);
    expect(sample(t, 'berth_cni_operation_duration_seconds_count{op="DEL"}')).toBe(1);
    expect(sample(t, 'berth_cni_operation_failures_total{op="DEL"}')).toBe(1);
    expect(sample(t, 'berth_cni_operation_failures_total{op="ADD"}')).toBeUndefined();
    expect(sample(t, 'berth_image_pulls_total')).toBe(1);
    expect(sample(t, 'berth_image_pull_bytes_total')).toBe(1010);
    expect(sample(t, 'berth_image_pull_failures_total{reason="NOT_FOUND"}')).toBe(1);
    expect(sample(t, 'berth_image_pull_failures_total{reason="INTERNAL"}')).toBe(1);
    expect(sample(t, 'berth_image_pull_duration_seconds_count')).toBe(1);
    expect(sample(t, 'berth_image_unpack_bytes_total')).toBe(5000);
    expect(sample(t, 'berth_cni_plugin_duration_seconds_count{op="ADD",plugin="bridge"}')).toBe(1);
    expect(sample(t, 'berth_cni_plugin_failures_total{op="DEL",plugin="bridge"}')).toBe(1);
    expect(sample(t, 'berth_exec_sync_total')).toBe(2);
    expect(sample(t, 'berth_exec_sync_timeouts_total')).toBe(1);
  });

  it('reads pods, containers, conmons and the event loop from its sources at scrape time', async () => {
    const m = new BerthMetrics();
    expect(await m.text()).not.toMatch(/^berth_pods\{/m);
    m.setSources(sources);
    const t = await m.text();
    expect(sample(t, 'berth_pods{state="ready"}')).toBe(2);
    expect(sample(t, 'berth_pods{state="notready"}')).toBe(1);
    expect(sample(t, 'berth_pods{state="creating"}')).toBe(0);
    expect(sample(t, 'berth_containers{state="running"}')).toBe(1);
    expect(sample(t, 'berth_containers{state="created"}')).toBe(0);
    expect(sample(t, 'berth_conmon_processes')).toBe(3);
    expect(sample(t, 'berth_event_loop_delay_seconds{quantile="0.99"}')).toBe(0.025);
    expect(sample(t, 'berth_event_loop_utilization_ratio')).toBe(0.25);
  });

  it('adds the process metrics (RSS, heap, open fds)', async () => {
    const m = new BerthMetrics();
    m.enableProcessMetrics();
    const t = await m.text();
    expect(sample(t, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(t, 'process_open_fds')).toBeGreaterThan(0);
    expect(t).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
  });

  it('helpers', () => {
    expect(codeOf(notFound('x'))).toBe('NOT_FOUND');
    expect(codeOf('x')).toBe('INTERNAL');
    expect([...countStates(['ready', 'odd'], POD_STATES)]).toEqual([
      ['creating', 0],
      ['ready', 1],
      ['notready', 0],
      ['odd', 1],
    ]);
  });
});

describe('metrics endpoint', () => {
  it('parses listen addresses', () => {
    expect(parseListenAddress('127.0.0.1:9338')).toEqual({ host: '127.0.0.1', port: 9338 });
    expect(parseListenAddress('[::1]:9338')).toEqual({ host: '::1', port: 9338 });
    expect(parseListenAddress('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    for (const bad of ['9338', ':9338', '127.0.0.1', '127.0.0.1:99999', 'http://x:1', '::1:9338'])
      expect(parseListenAddress(bad)).toBeUndefined();
  });

  it('serves /metrics in the text format, 404 elsewhere', async () => {
    const m = new BerthMetrics();
    m.rpc('Version', 'OK', 0.001);
    const log = { warn: () => undefined } as unknown as Logger;
    const srv = await serveMetrics(m, { host: '127.0.0.1', port: 0 }, log);
    try {
      const get = (p: string): Promise<{ status: number; type: string; body: string }> =>
        new Promise((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port: srv.address.port, path: p }, (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () =>
                resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
              );
            })
            .on('error', reject);
        });
      const ok = await get('/metrics');
      expect(ok.status).toBe(200);
      expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(ok.body).toContain('# TYPE berth_rpc_requests_total counter');
      expect(sample(ok.body, 'berth_rpc_requests_total{rpc="Version",code="OK"}')).toBe(1);
      expect((await get('/')).status).toBe(404);
    } finally {
      await srv.close();
    }
  });
});
