import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Status } from '../errors';
import { POD_CIDR_FILE, PodCidrStore } from './pod-cidr';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-cidr-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('set persists and applies; a new store loads and applies it again', async () => {
  const applied: string[] = [];
  const s = new PodCidrStore(dir, (c) => applied.push(c));
  expect(await s.load()).toBe('');
  expect(applied).toEqual([]);
  await s.set('10.244.1.0/24');
  expect(s.get()).toBe('10.244.1.0/24');
  expect(applied).toEqual(['10.244.1.0/24']);
  expect(JSON.parse(fs.readFileSync(path.join(dir, POD_CIDR_FILE), 'utf8'))).toEqual({
    podCidr: '10.244.1.0/24',
  });
  const again: string[] = [];
  const s2 = new PodCidrStore(dir, (c) => again.push(c));
  expect(await s2.load()).toBe('10.244.1.0/24');
  expect(again).toEqual(['10.244.1.0/24']);
});

test('a malformed CIDR is INVALID_ARGUMENT and changes nothing', async () => {
  const applied: string[] = [];
  const s = new PodCidrStore(dir, (c) => applied.push(c));
  await s.set('10.0.0.0/16');
  await expect(s.set('10.0.0.0')).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
  expect(s.get()).toBe('10.0.0.0/16');
  expect(applied).toEqual(['10.0.0.0/16']);
});

test('a corrupt file does not stop loading', async () => {
  fs.writeFileSync(path.join(dir, POD_CIDR_FILE), '{nope');
  const s = new PodCidrStore(dir, () => undefined);
  expect(await s.load()).toBe('');
});
