import { parseDocument } from 'yaml';
import { BorealisError, ErrorCodes } from './errors.js';
import { findDuplicateKey } from './json-duplicate-keys.js';
import type { HttpRequest } from '../transport/index.js';

export const JSON_TYPES = ['application/json'] as const;
export const YAML_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml'] as const;

/** The media type without parameters (`application/json; charset=utf-8` -> `application/json`). */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * The request body as a value: JSON or YAML by Content-Type (415 for anything else), 400 MALFORMED_BODY when it
 * does not parse. `allowYaml` is for job specs, which people write as files.
 */
export function parseBody(req: HttpRequest, allowYaml: boolean): unknown {
  const type = mediaType(req.headers['content-type']);
  const isJson = (JSON_TYPES as readonly string[]).includes(type);
  const isYaml = allowYaml && (YAML_TYPES as readonly string[]).includes(type);
  if (!isJson && !isYaml) {
    const accepted = allowYaml ? [...JSON_TYPES, ...YAML_TYPES] : [...JSON_TYPES];
    throw new BorealisError(
      ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
      `Content-Type ${type === '' ? '(none)' : JSON.stringify(type)} is not supported; use ${accepted.join(', ')}`,
    );
  }
  const text = req.body.toString('utf8');
  if (text.trim() === '') throw new BorealisError(ErrorCodes.MALFORMED_BODY, 'the request body is empty');
  if (isJson) {
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch (err) {
      throw new BorealisError(ErrorCodes.MALFORMED_BODY, `malformed JSON: ${(err as Error).message}`);
    }
    const twice = findDuplicateKey(text);
    if (twice !== null) {
      throw new BorealisError(ErrorCodes.MALFORMED_BODY, `malformed JSON: ${twice} is given twice`, [{ path: twice, message: 'given twice' }]);
    }
    return value;
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new BorealisError(ErrorCodes.MALFORMED_BODY, `malformed YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (err) {
    throw new BorealisError(ErrorCodes.MALFORMED_BODY, `malformed YAML: ${(err as Error).message}`);
  }
}
