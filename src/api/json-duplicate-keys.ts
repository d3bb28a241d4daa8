/**
 * The first member name that appears twice in one object of a JSON text, as a path (`resources.cpus`,
 * `constraints[1].value`), or null. JSON.parse keeps the last of two equal names silently (RFC 8259 leaves it
 * open), so `{"instances": 3, ..., "instances": 300}` would run 300; YAML bodies are already refused for it
 * (the yaml parser's uniqueKeys), and JSON ones should be too.
 *
 * Runs on text JSON.parse has accepted, so it only tracks structure: strings (with escapes), objects, arrays.
 * Names are compared decoded (`"a"` and `"\u0061"` are the same name).
 */
export function findDuplicateKey(text: string): string | null {
  interface Frame {
    /** Names seen so far in this object; null for an array. */
    names: Set<string> | null;
    /** The path of this container. */
    path: string;
    /** Array: index of the current element. */
    index: number;
    /** Object: the name whose value comes next. */
    name: string;
  }
  const stack: Frame[] = [];
  const childPath = (f: Frame): string =>
    f.names === null ? `${f.path}[${f.index}]` : f.path === '' ? f.name : `${f.path}.${f.name}`;
  let expectName = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (expectName && top !== undefined && top.names !== null) {
        const name = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.names.has(name)) return top.path === '' ? name : `${top.path}.${name}`;
        top.names.add(name);
        top.name = name;
        expectName = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      const path = parent === undefined ? '' : childPath(parent);
      stack.push({ names: c === 0x7b ? new Set() : null, path, index: 0, name: '' });
      expectName = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectName = false;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top !== undefined) {
        if (top.names === null) top.index++;
        else expectName = true;
      }
    }
  }
  return null;
}
