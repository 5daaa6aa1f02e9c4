// Reading a manifest file with @kubernetes/client-node's loadAllYaml, so objects are typed and
// parsed as the Kubernetes client does.
//
// @kubernetes/client-node 1.x is an ES module. Node 20.20 can require() it, so tsc's CommonJS
// output works, but Jest (ts-jest, CommonJS) cannot load it. So the translation modules depend on
// its types only (`import type`), and this is the one place that loads it, on first use, with a
// dynamic import (compiled to a require() that Node 20.20 resolves to the ES module). Unit tests
// feed the translation plain objects; the integration tests run the built berthctl, which goes
// through here.
import { parseAllDocuments } from 'yaml';

type ClientNode = typeof import('@kubernetes/client-node');
let clientNode: Promise<ClientNode> | undefined;

function loadClientNode(): Promise<ClientNode> {
  clientNode ??= import('@kubernetes/client-node');
  return clientNode;
}

/**
 * The objects of a multi-document YAML (or JSON) manifest. Empty documents (a leading or trailing
 * `---`) are skipped: loadAllYaml would fail on them.
 */
export async function loadManifest(text: string): Promise<unknown[]> {
  const k8s = await loadClientNode();
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const d of list) {
    if (d.errors.length) throw new Error(`manifest: ${d.errors[0].message}`);
    if (d.contents === null) continue;
    const [start, , end] = d.range;
    out.push(...k8s.loadAllYaml(text.slice(start, end)));
  }
  return out;
}
