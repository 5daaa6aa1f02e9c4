// Kubernetes resource quantities ("500m", "1.5", "128Mi", "1e3", 2): what kubelet reads from a
// pod's requests and limits, as apimachinery's resource.Quantity does (values round up).

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

const QUANTITY_RE = /^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** A quantity as a plain number of units (cores, bytes); throws on what Kubernetes would refuse. */
export function parseQuantity(q: string | number, what: string): number {
  if (typeof q === 'number') {
    if (!Number.isFinite(q)) throw new Error(`${what}: ${q} is not a quantity`);
    return q;
  }
  const m = QUANTITY_RE.exec(q.trim());
  if (!m) throw new Error(`${what}: ${JSON.stringify(q)} is not a quantity`);
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  if (suffix in BINARY) return n * BINARY[suffix];
  if (suffix in DECIMAL) return n * DECIMAL[suffix];
  return n * 10 ** Number(suffix.slice(1)); // e/E exponent
}

/** Quantity.MilliValue(): thousandths, rounded up. */
export function milliValue(q: string | number, what: string): number {
  return Math.ceil(Math.round(parseQuantity(q, what) * 1e9) / 1e6);
}

/** Quantity.Value(): whole units, rounded up. */
export function intValue(q: string | number, what: string): number {
  return Math.ceil(Math.round(parseQuantity(q, what) * 1e6) / 1e6);
}
