import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// scripts/proto-check.js (`npm run proto:check`): Berth's proto against the committed CRI wire facts,
// with ../shared's tool only as an extra check where it exists.

const repo = path.resolve(__dirname, '..', '..');
const protoDir = path.join(repo, 'api', 'runtime', 'v1');
const factsNames = ['cri-facts.v0.32.json', 'cri-facts.latest.json'];
const references: Record<string, string> = {
  'cri-facts.v0.32.json': 'cri-api-v0.32-runtime-v1.proto',
  'cri-facts.latest.json': 'cri-api-master-2026-07-23-runtime-v1.proto',
};
const referenceDir = fs.existsSync(path.join(repo, '..', 'shared', 'reference'))
  ? path.join(repo, '..', 'shared', 'reference')
  : '/work/shared/reference';

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-proto-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test("Berth's proto passes the check", () => {
  const r = run(process.execPath, ['scripts/proto-check.js'], repo);
  expect(r.out).toMatch(/^compatible: 2 services \(34 rpcs\), \d+ messages/m);
  expect(r.out).toMatch(/^compatible: 2 services \(43 rpcs\), \d+ messages/m);
  expect(r.out).toMatch(/^note: runtime\.v1\.KeyValue\.value \(#2\).*same encoding$/m);
  expect(r.status).toBe(0);
});

test('a proto lacking a main-line RPC fails the latest facts but still passes v0.32', () => {
  const d = tmp();
  const text = fs.readFileSync(path.join(protoDir, 'api.proto'), 'utf8');
  const changed = text.replace(/^\s*rpc StreamImages\(.*\n/m, '');
  expect(changed).not.toBe(text);
  fs.writeFileSync(path.join(d, 'api.proto'), changed);
  const r = run(process.execPath, ['scripts/proto-check.js', path.join(d, 'api.proto')], repo);
  expect(r.out).toMatch(/^compatible: 2 services \(34 rpcs\)/m);
  expect(r.out).toMatch(/^INCOMPATIBLE: rpc runtime\.v1\.ImageService\.StreamImages is missing$/m);
  expect(r.status).toBe(1);
});

test('a renumbered field fails the check, naming the field', () => {
  const d = tmp();
  const text = fs.readFileSync(path.join(protoDir, 'api.proto'), 'utf8');
  const changed = text.replace(
    /(message PodSandboxMetadata \{[^}]*?\bstring name = )1;/,
    (_m, head: string) => `${head}11;`,
  );
  expect(changed).not.toBe(text);
  fs.writeFileSync(path.join(d, 'api.proto'), changed);
  const r = run(process.execPath, ['scripts/proto-check.js', path.join(d, 'api.proto')], repo);
  expect(r.out).toMatch(/^INCOMPATIBLE: runtime\.v1\.PodSandboxMetadata\.name \(#1\).*#11/m);
  expect(r.status).toBe(1);
});

test('a fresh clone with no ../shared beside it passes, skipping the extra check', () => {
  const clone = path.join(tmp(), 'berth');
  const copy = (rel: string) => {
    fs.mkdirSync(path.dirname(path.join(clone, rel)), { recursive: true });
    fs.copyFileSync(path.join(repo, rel), path.join(clone, rel));
  };
  copy('package.json');
  copy('scripts/proto-check.js');
  for (const f of fs.readdirSync(protoDir))
    if (f.endsWith('.proto') || factsNames.includes(f)) copy(path.join('api', 'runtime', 'v1', f));
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
  expect(fs.existsSync(path.join(clone, '..', 'shared'))).toBe(false);

  const pkg = JSON.parse(fs.readFileSync(path.join(clone, 'package.json'), 'utf8'));
  expect(pkg.scripts['proto:check']).toBe('node scripts/proto-check.js');
  const r = run(process.execPath, ['scripts/proto-check.js'], clone);
  expect(r.out).toMatch(/^compatible: /m);
  expect(r.out).toMatch(/^extra check skipped: \.\.\/shared\/tools\/cri-proto-compat\.js is not present$/m);
  expect(r.status).toBe(0);
});

// Where the references are at hand, the committed facts must be what the generator makes of them.
for (const factsName of factsNames) {
  const reference = path.join(referenceDir, references[factsName]);
  (fs.existsSync(reference) ? test : test.skip)(`${factsName} is generated from the reference`, () => {
    const out = path.join(tmp(), factsName);
    const r = run(process.execPath, ['scripts/gen-cri-facts.js', reference, '--out', out], repo);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(path.join(protoDir, factsName), 'utf8'));
  });
}
