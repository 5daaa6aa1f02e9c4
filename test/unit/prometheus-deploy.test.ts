// deploy/prometheus/ and the README's metric table stay in step with the metrics berthd exports:
// every berth_* name an alert uses exists, and every metric berthd registers is documented.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { BerthMetrics } from '../../internal/metrics/registry';

const ROOT = path.join(__dirname, '..', '..');
const read = (p: string): string => fs.readFileSync(path.join(ROOT, p), 'utf8');

async function registered(): Promise<string[]> {
  const m = new BerthMetrics();
  m.enableProcessMetrics();
  return (await m.registry.getMetricsAsJSON()).map((x) => x.name);
}

test('the scrape config loads the alert rules and scrapes berth', () => {
  const cfg = parse(read('deploy/prometheus/prometheus.yml')) as {
    rule_files: string[];
    scrape_configs: { job_name: string; metrics_path: string }[];
  };
  expect(cfg.rule_files).toEqual(['berth-alerts.yml']);
  expect(cfg.scrape_configs[0]).toMatchObject({ job_name: 'berth', metrics_path: '/metrics' });
});

test('alert rules use only metrics berthd exports, and cover probe timeouts and event-loop lag', async () => {
  const rules = parse(read('deploy/prometheus/berth-alerts.yml')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const names = new Set(await registered());
  const all = rules.groups.flatMap((g) => g.rules);
  for (const r of all) {
    for (const used of r.expr.match(/\bberth_[a-z_]+/g) ?? [])
      expect([r.alert, names.has(used.replace(/_(bucket|count|sum)$/, ''))]).toEqual([r.alert, true]);
  }
  const exprs = all.map((r) => r.expr).join('\n');
  expect(exprs).toContain('berth_exec_sync_timeouts_total');
  expect(exprs).toContain('berth_event_loop_delay_seconds');
});

test('the README documents every metric berthd exports', async () => {
  const readme = read('README.md');
  const missing = (await registered()).filter((n) => !readme.includes(`\`${n}\``));
  expect(missing).toEqual([]);
});
