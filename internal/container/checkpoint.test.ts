// The archive layout with real GNU tar: CRIU images, spec, record and the upper dir with an
// overlay whiteout.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeCheckpointArchive } from './checkpoint';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ckpt-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(['out.tar', 'out.tar.gz'])('%s holds images, spec, record and the rootfs diff', async (name) => {
  const work = path.join(dir, 'work');
  fs.mkdirSync(path.join(work, 'checkpoint'), { recursive: true });
  fs.writeFileSync(path.join(work, 'checkpoint', 'pages-1.img'), 'pages');
  fs.writeFileSync(path.join(work, 'dump.log'), 'log');
  const bundle = path.join(dir, 'bundle');
  fs.mkdirSync(bundle);
  fs.writeFileSync(path.join(bundle, 'config.json'), '{"ociVersion":"1.0.2"}');
  const upper = path.join(dir, 'upper');
  fs.mkdirSync(path.join(upper, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(upper, 'etc', 'new.conf'), 'changed');
  const canMknod = process.getuid?.() === 0;
  if (canMknod) execFileSync('mknod', [path.join(upper, 'etc', 'gone'), 'c', '0', '0']);
  const location = path.join(dir, name);
  const entries = await writeCheckpointArchive({
    location,
    workDir: work,
    specFile: path.join(bundle, 'config.json'),
    record: { id: 'abc' },
    upperDir: upper,
  });
  expect(entries).toEqual(['checkpoint', 'spec.dump', 'config.dump', 'rootfs-diff.tar', 'dump.log']);
  const list = execFileSync('tar', ['-tf', location], { encoding: 'utf8' }).split('\n');
  expect(list).toEqual(
    expect.arrayContaining([
      'checkpoint/pages-1.img',
      'spec.dump',
      'config.dump',
      'rootfs-diff.tar',
      'dump.log',
    ]),
  );
  const out = path.join(dir, 'x');
  fs.mkdirSync(out);
  execFileSync('tar', ['-xf', location, '-C', out]);
  expect(JSON.parse(fs.readFileSync(path.join(out, 'config.dump'), 'utf8'))).toEqual({ id: 'abc' });
  expect(fs.readFileSync(path.join(out, 'spec.dump'), 'utf8')).toBe('{"ociVersion":"1.0.2"}');
  const diff = execFileSync('tar', ['-tvf', path.join(out, 'rootfs-diff.tar')], { encoding: 'utf8' });
  expect(diff).toContain('./etc/new.conf');
  if (canMknod) expect(diff).toMatch(/^c.* 0,0 .*\.\/etc\/gone$/m);
  // no temp files left beside the archive
  expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
});
