// Request checks shared by the handlers. Each throws INVALID_ARGUMENT naming the field.
import { invalidArgument, short } from '../errors';

const MAX_REF = 4096;

/** An image reference or id from a request: present, bounded, printable. */
export function requireImageRef(value: string | undefined, field: string): string {
  const v = (value ?? '').trim();
  if (!v) throw invalidArgument(`${field} is required`);
  if (v.length > MAX_REF)
    throw invalidArgument(`${field} is too long (${v.length} chars, at most ${MAX_REF})`);
  if (/[\x00-\x20\x7f]/.test(v))
    throw invalidArgument(`${field} ${short(v)} contains whitespace or control characters`);
  return v;
}
