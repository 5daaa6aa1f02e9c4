// Request checks shared by the handlers. Each throws INVALID_ARGUMENT naming the field.
import { invalidArgument, short } from '../errors';
import { parseReference } from '../image/reference';

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

/**
 * An image reference or id for a lookup (ImageStatus, RemoveImage): an id or id prefix passes as
 * is; anything else must parse as a reference, so a malformed one is INVALID_ARGUMENT, not "absent".
 */
export function requireImageLookup(value: string | undefined, field: string): string {
  const v = requireImageRef(value, field);
  if (!/^(sha256:)?[0-9a-f]{12,64}$/.test(v)) parseReference(v);
  return v;
}
