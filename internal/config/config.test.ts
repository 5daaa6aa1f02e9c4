import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, defaultConfig, loadConfig } from './config';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cfg-'));
}

test('defaults validate and name the documented paths', () => {
  const d = tmp();
  const f = path.join(d, 'empty.json');
  fs.writeFileSync(f, '{}');
  const c = loadConfig(f, {});
  fs.rmSync(d, { recursive: true });
  expect(c.socket).toBe('/run/berth/berth.sock');
  expect(c.root).toBe('/var/lib/berth');
  expect(c.image.pull_progress_timeout_seconds).toBe(300);
  expect(c.image.max_manifest_bytes).toBe(4 * 1024 * 1024);
  expect(c.image.max_config_bytes).toBe(32 * 1024 * 1024);
  expect(c.image.max_layer_uncompressed_bytes).toBe(50 * 1024 ** 3);
  expect(c.image.max_image_uncompressed_bytes).toBe(100 * 1024 ** 3);
  expect(c.image.max_layer_compression_ratio).toBe(1000);
  expect(c.event_loop_warn_ms).toBe(100);
  expect(c.stats.disk_usage_refresh_seconds).toBe(10);
  expect(c.metrics_address).toBe('');
  expect(c.runtime.conmon_cgroup).toBe('pod');
  expect(c).toEqual(defaultConfig());
});

test('metrics_address and conmon_cgroup accept their forms', () => {
  const d = tmp();
  const f = path.join(d, 'c.json');
  for (const [data, check] of [
    [{ metrics_address: '127.0.0.1:9338' }, (c: ReturnType<typeof loadConfig>) => c.metrics_address],
    [{ metrics_address: '[::1]:9338' }, (c: ReturnType<typeof loadConfig>) => c.metrics_address],
    [
      { runtime: { conmon_cgroup: '/system/berth-conmon' } },
      (c: ReturnType<typeof loadConfig>) => c.runtime.conmon_cgroup,
    ],
    [
      { runtime: { cgroup_driver: 'systemd', conmon_cgroup: 'system.slice' } },
      (c: ReturnType<typeof loadConfig>) => c.runtime.conmon_cgroup,
    ],
  ] as const) {
    fs.writeFileSync(f, JSON.stringify(data));
    expect(check(loadConfig(f))).toBeTruthy();
  }
  fs.rmSync(d, { recursive: true });
});

test('TOML file, then drop-ins, then flags', () => {
  const d = tmp();
  const f = path.join(d, 'config.toml');
  fs.writeFileSync(
    f,
    'log_level = "debug"\n[image]\nmax_concurrent_downloads = 5\n[registry.mirrors]\n"docker.io" = ["http://localhost:5000"]\n',
  );
  fs.mkdirSync(path.join(d, 'config.d'));
  fs.writeFileSync(
    path.join(d, 'config.d', '10-x.json'),
    JSON.stringify({ image: { max_concurrent_downloads: 7 } }),
  );
  const c = loadConfig(f, { state: '/tmp/st' });
  expect(c.log_level).toBe('debug');
  expect(c.image.max_concurrent_downloads).toBe(7);
  expect(c.registry.mirrors['docker.io']).toEqual(['http://localhost:5000']);
  expect(c.state).toBe('/tmp/st');
  expect(c.socket).toBe('/tmp/st/berth.sock');
  fs.rmSync(d, { recursive: true });
});

test.each([
  [{ nope: 1 }, 'nope'],
  [{ image: { max_concurrent_downloads: 0 } }, 'image.max_concurrent_downloads'],
  [{ image: { platform: 'amd64' } }, 'image.platform'],
  [{ root: 'relative' }, 'root'],
  [{ log_level: 'loud' }, 'log_level'],
  [{ registry: { mirrors: { 'docker.io': ['ftp://x'] } } }, 'registry.mirrors.docker.io'],
  [{ runtime: { default_runtime: 'kata' } }, 'runtime.default_runtime'],
  [{ cni: { bin_dirs: 'x' } }, 'cni.bin_dirs'],
  [{ event_loop_warn_ms: 0 }, 'event_loop_warn_ms'],
  [{ event_loop_warn_ms: '100' }, 'event_loop_warn_ms'],
  [{ stats: { disk_usage_refresh_seconds: 0 } }, 'stats.disk_usage_refresh_seconds'],
  [{ stats: { disk_usage_refresh_seconds: 2.5 } }, 'stats.disk_usage_refresh_seconds'],
  [{ metrics_address: '9338' }, 'metrics_address'],
  [{ metrics_address: '127.0.0.1:70000' }, 'metrics_address'],
  [{ runtime: { conmon_cgroup: 'relative/path' } }, 'runtime.conmon_cgroup'],
  [{ runtime: { conmon_cgroup: '/a/../b' } }, 'runtime.conmon_cgroup'],
  [{ runtime: { conmon_cgroup: '/berth-conmon', cgroup_driver: 'systemd' } }, 'runtime.conmon_cgroup'],
  [{ image: { max_manifest_bytes: 10 } }, 'image.max_manifest_bytes'],
  [{ image: { max_layer_uncompressed_bytes: 1.5e6 + 0.5 } }, 'image.max_layer_uncompressed_bytes'],
  [{ image: { max_layer_compression_ratio: -1 } }, 'image.max_layer_compression_ratio'],
  [{ image: { unpack_workers: -1 } }, 'image.unpack_workers'],
  [{ image: { unpack_workers: 1.5 } }, 'image.unpack_workers'],
])('bad config %j names %s', (data, key) => {
  const d = tmp();
  const f = path.join(d, 'c.json');
  fs.writeFileSync(f, JSON.stringify(data));
  let err: unknown;
  try {
    loadConfig(f);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).key).toBe(key);
  fs.rmSync(d, { recursive: true });
});

test('unparsable file is reported with its path', () => {
  const d = tmp();
  const f = path.join(d, 'c.toml');
  fs.writeFileSync(f, '[[[');
  expect(() => loadConfig(f)).toThrow(f);
  fs.rmSync(d, { recursive: true });
});
