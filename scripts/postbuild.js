#!/usr/bin/env node
// Makes the built entry points executable (npm links them as `berthd` and `berthctl`).
'use strict';
const fs = require('fs');
const path = require('path');
for (const f of ['dist/cmd/berthd/main.js', 'dist/cmd/berthctl/main.js']) {
  const p = path.join(__dirname, '..', f);
  if (fs.existsSync(p)) fs.chmodSync(p, 0o755);
}
