import { defaultConfig } from '../config/config';
import { runtimeConfig } from './runtime_config';
import type { ServerDeps } from './deps';

test('RuntimeConfig tells kubelet the cgroup driver to use (KEP-4033)', async () => {
  for (const [driver, want] of [
    ['cgroupfs', 'CGROUPFS'],
    ['systemd', 'SYSTEMD'],
  ] as const) {
    const config = defaultConfig();
    config.runtime.cgroup_driver = driver;
    expect(await runtimeConfig({ config } as ServerDeps)({})).toEqual({ linux: { cgroup_driver: want } });
  }
});
