// berthd as a process: the socket, flags and config, the runtime-info RPCs, shutdown and the
// stale-socket rules.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { call } from '../../api/client';
import { BERTHD, berthctl, startBerthd, type TestDaemon } from '../lab/berthd';

let d: TestDaemon;

beforeAll(async () => {
  d = await startBerthd();
});
afterAll(async () => {
  await d?.cleanup();
});

test('Version names berth and CRI v1', async () => {
  const v = await call(d.clients.runtime, 'Version', { version: 'v1' });
  expect(v.runtime_name).toBe('berth');
  expect(v.runtime_api_version).toBe('v1');
  expect(v.runtime_version).toMatch(/^\d+\.\d+\.\d+/);
});

test('Status reports RuntimeReady and the runtime handlers', async () => {
  const s = await call(d.clients.runtime, 'Status', { verbose: true });
  const cond = Object.fromEntries(s.status!.conditions.map((c) => [c.type, c]));
  expect(cond.RuntimeReady.status).toBe(true);
  expect(cond.NetworkReady).toBeDefined();
  if (!cond.NetworkReady.status) expect(cond.NetworkReady.reason).not.toBe('');
  expect(s.runtime_handlers.map((h) => h.name)).toContain('runc');
  expect(JSON.parse(s.info.config).root).toBe(d.root);
});

test('RuntimeConfig reports the cgroupfs driver', async () => {
  const r = await call(d.clients.runtime, 'RuntimeConfig', {});
  expect(r.linux?.cgroup_driver).toBe('CGROUPFS');
});

test('the socket is mode 0660', () => {
  expect(fs.statSync(d.socket).mode & 0o777).toBe(0o660);
});

test('bad image requests are INVALID_ARGUMENT, not crashes', async () => {
  await expect(call(d.clients.image, 'PullImage', { image: { image: '' } })).rejects.toMatchObject({
    code: Status.INVALID_ARGUMENT,
  });
  await expect(
    call(d.clients.image, 'PullImage', { image: { image: 'UPPER/Case:tag' } }),
  ).rejects.toMatchObject({
    code: Status.INVALID_ARGUMENT,
  });
  await expect(
    call(d.clients.image, 'ImageStatus', { image: { image: 'busybox@sha256:1234' } }),
  ).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
  // still serving
  await call(d.clients.runtime, 'Version', {});
});

test('a second daemon on a live socket refuses to start and names the socket', () => {
  const r = spawnSync(
    process.execPath,
    [BERTHD, '--config', d.configPath, '--root', d.root, '--state', d.state],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  expect(r.status).not.toBe(0);
  expect(r.stdout + r.stderr).toContain(`another daemon is already serving on ${d.socket}`);
  // the first one is unaffected
  expect(fs.existsSync(d.socket)).toBe(true);
});

test('a bad config key stops the daemon at start with the key named', () => {
  const bad = path.join(d.dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ image: { max_concurrent_downloads: 'many' } }));
  const r = spawnSync(process.execPath, [BERTHD, '--config', bad, '--state', path.join(d.dir, 'x')], {
    encoding: 'utf8',
  });
  expect(r.status).toBe(2);
  expect(r.stderr).toContain('image.max_concurrent_downloads');
});

test('berthctl version and info talk to the daemon', async () => {
  const v = await berthctl(d, ['version']);
  expect(v.code).toBe(0);
  expect(v.stdout).toContain('RuntimeName:  berth');
  const i = await berthctl(d, ['info']);
  expect(i.code).toBe(0);
  expect(JSON.parse(i.stdout).cgroupDriver).toBe('CGROUPFS');
  const bad = await berthctl({ endpoint: 'unix:///nonexistent/berth.sock' }, ['version']);
  expect(bad.code).toBe(1);
});

test('after kill -9 the stale socket is replaced on restart; SIGTERM removes it', async () => {
  await d.kill9();
  expect(fs.existsSync(d.socket)).toBe(true);
  await d.restart();
  await call(d.clients.runtime, 'Version', {});
  const code = await d.stop();
  expect(code).toBe(0);
  expect(fs.existsSync(d.socket)).toBe(false);
  await d.restart();
});
