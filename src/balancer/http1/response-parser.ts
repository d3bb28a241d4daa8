/**
 * An HTTP/1.x response parser for one connection, reused for every response on it (begin() resets it): bytes go
 * in through execute(), in whatever pieces the socket delivers them, and come out as one onResponseHead (the
 * final status and its headers as latin1 strings) and body slices, de-chunked.
 *
 * Framing follows RFC 9112 §6.3: no body after HEAD, 1xx, 204 and 304; chunked when the last transfer coding is
 * chunked (trailers are read and dropped); Content-Length; otherwise until the connection closes. Interim 1xx
 * responses (100 Continue, 103 Early Hints) are skipped; a 101 ends parsing when the request asked to upgrade.
 *
 * Strict where a lenient reading would let two parsers disagree about where a response ends (the response
 * smuggling twin of headers.ts' request checks): CRLF line ends only, no obs-fold, no space before a header's
 * colon, no control characters, Content-Length digits only and all equal, never with Transfer-Encoding, and a
 * head of at most `maxHeadBytes`. Any of these is an error (the endpoint's fault: 502).
 *
 * The parser never keeps a reference to the bytes it is given (a head split across reads is copied into its own
 * buffer): the connection reads into one buffer shared by every socket.
 */
import { TCHAR } from '../tokens.js';

export interface ResponseSink {
  /** The final response's head (or a 101's, for an upgrade). `headers` is the parser's own array: copy to keep. */
  onResponseHead(status: number, headers: string[]): void;
  /** Body bytes `buf[start, end)`: only valid during the call. */
  onResponseBody(buf: Buffer, start: number, end: number): void;
}

/** Where the parser is. */
export const ParseState = {
  HEAD: 0,
  LENGTH: 1,
  UNTIL_EOF: 2,
  CHUNK_SIZE: 3,
  CHUNK_EXT: 4,
  CHUNK_SIZE_LF: 5,
  CHUNK_DATA: 6,
  CHUNK_DATA_CR: 7,
  CHUNK_DATA_LF: 8,
  TRAILER_START: 9,
  TRAILER_LINE: 10,
  TRAILER_LINE_LF: 11,
  TRAILER_END_LF: 12,
  /** The response is complete. */
  DONE: 13,
  /** A 101 to an upgrade request: the bytes after its head belong to the new protocol. */
  UPGRADED: 14,
  /** Malformed: `error` says why. */
  ERROR: 15,
  /** stop() was called (the attempt was aborted from a callback). */
  STOPPED: 16,
} as const;

/** Node's default --max-http-header-size, as undici (and nginx's proxy_buffer_size order of magnitude). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Header strings (names and values) #text remembers per connection, from the start of the head. */
const MAX_REMEMBERED_TEXTS = 64;
/** 13 hex digits are 2^52: beyond that a chunk size is not a safe integer (and no real chunk is that large). */
const MAX_CHUNK_SIZE_DIGITS = 13;

const CR = 13;
const LF = 10;
const SP = 32;
const HT = 9;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Buffer's own latin1 decoder, without toString()'s argument checks and encoding lookup (a third of the cost of
 * a short header string): present on every Buffer since Node's first releases, though not in its typings.
 */
interface Latin1Slicing {
  latin1Slice(start: number, end: number): string;
}
/** Checked once: should a Node release drop the method, headers decode through the documented toString(). */
const HAS_LATIN1_SLICE = typeof (Buffer.prototype as unknown as Partial<Latin1Slicing>).latin1Slice === 'function';
function latin1(b: Buffer, start: number, end: number): string {
  return HAS_LATIN1_SLICE ? (b as unknown as Latin1Slicing).latin1Slice(start, end) : b.toString('latin1', start, end);
}

/** Hex digit values, -1 for anything else. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[65 + c] = 10 + c;
  HEX[97 + c] = 10 + c;
}

const lowerBytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const N_CONTENT_LENGTH = lowerBytes('content-length');
const N_TRANSFER_ENCODING = lowerBytes('transfer-encoding');
const N_CONNECTION = lowerBytes('connection');
const N_KEEP_ALIVE = lowerBytes('keep-alive');
const CHUNKED = lowerBytes('chunked');

/** Whether `b[start, start + name.length)` is `name` (lower case), ignoring ASCII case (names are tchar-checked). */
function nameIs(b: Buffer, start: number, len: number, name: Uint8Array): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if ((b[start + i] | 0x20) !== name[i]) return false;
  return true;
}

export class ResponseParser {
  state: number = ParseState.HEAD;
  /** The final status (or 101). */
  status = 0;
  /** Whether the connection may carry another request after this response (HTTP/1.1 without Connection: close). */
  keepAlive = false;
  /** The endpoint's Keep-Alive: timeout=N, in ms; -1 when it sent none. */
  keepAliveHintMs = -1;
  /** Why the response is malformed (state ERROR). */
  error = '';
  /** Whether the 101 answered a request that did not ask to upgrade (state ERROR). */
  unexpectedUpgrade = false;
  /** Whether any byte of this response arrived (a connection closed before one is "no response"). */
  sawBytes = false;
  /** The current head's headers, `[name, value, ...]`; reused for every response. */
  readonly headers: string[] = [];
  /** The previous heads' header strings by position, for #text. */
  readonly #lastTexts: string[] = [];
  readonly #sink: ResponseSink;
  readonly #maxHead: number;
  #isHead = false;
  #expectUpgrade = false;
  /** A head split across reads, gathered here (allocated the first time one is). */
  #headBuf: Buffer | null = null;
  #headLen = 0;
  /** Body bytes left (LENGTH), or of the current chunk (CHUNK_DATA). */
  #remaining = 0;
  #chunkDigits = 0;
  #chunkExt = false;
  /** Trailer bytes so far (bounded like a head). */
  #trailerBytes = 0;
  // What the head said, gathered while parsing it.
  #contentLength = -1;
  #hasTransferEncoding = false;
  #chunked = false;
  #close = false;
  #minor = 1;
  // The last head parsed whole and its results: an endpoint sends the same head byte for byte again and again (its
  // Date moves once a second), and one compare of the bytes costs a small fraction of parsing them.
  #lastHead: Buffer | null = null;
  #lastHeadLen = -1;
  #lastStatus = 0;
  #lastKeepAlive = false;
  #lastHintMs = -1;

  constructor(sink: ResponseSink, maxHeadBytes = MAX_HEAD_BYTES) {
    this.#sink = sink;
    this.#maxHead = maxHeadBytes;
  }

  /** Ready for the response to a new request. */
  begin(isHead: boolean, expectUpgrade: boolean): void {
    this.state = ParseState.HEAD;
    this.status = 0;
    this.keepAlive = false;
    this.keepAliveHintMs = -1;
    this.error = '';
    this.unexpectedUpgrade = false;
    this.sawBytes = false;
    this.#isHead = isHead;
    this.#expectUpgrade = expectUpgrade;
    this.#headLen = 0;
    this.#remaining = 0;
    this.#trailerBytes = 0;
  }

  /** Abandons the response (the attempt ended from inside a callback): execute() returns at once. */
  stop(): void {
    this.state = ParseState.STOPPED;
  }

  /**
   * Consumes `b[start, end)`; returns where it stopped: `end`, or earlier when the response completed (DONE), a
   * 101 switched protocols (UPGRADED: the rest is the new protocol's), it failed (ERROR) or was stopped.
   */
  execute(b: Buffer, start: number, end: number): number {
    let i = start;
    if (end > start) this.sawBytes = true;
    while (i < end) {
      switch (this.state) {
        case ParseState.HEAD:
          i = this.#execHead(b, i, end);
          break;
        case ParseState.LENGTH: {
          const n = Math.min(this.#remaining, end - i);
          this.#remaining -= n;
          if (this.#remaining === 0) this.state = ParseState.DONE;
          this.#sink.onResponseBody(b, i, i + n);
          i += n;
          break;
        }
        case ParseState.UNTIL_EOF:
          this.#sink.onResponseBody(b, i, end);
          i = end;
          break;
        case ParseState.CHUNK_SIZE: {
          const c = b[i];
          const d = HEX[c];
          if (d >= 0) {
            if (++this.#chunkDigits > MAX_CHUNK_SIZE_DIGITS) return this.#fail(i, 'chunk size too large');
            this.#remaining = this.#remaining * 16 + d;
          } else if (this.#chunkDigits === 0) {
            return this.#fail(i, 'invalid chunk size');
          } else if (c === CR) {
            this.state = ParseState.CHUNK_SIZE_LF;
          } else if (c === SP || c === HT || c === 59 /* ; */) {
            this.#chunkExt = c === 59;
            this.state = ParseState.CHUNK_EXT;
          } else {
            return this.#fail(i, 'invalid chunk size');
          }
          i++;
          break;
        }
        case ParseState.CHUNK_EXT: {
          // Whitespace, then `;name=value` extensions we ignore (RFC 9112 §7.1.1), up to the CR.
          const c = b[i];
          if (c === CR) this.state = ParseState.CHUNK_SIZE_LF;
          else if (c === 59) this.#chunkExt = true;
          else if (c === LF || c === 0 || (!this.#chunkExt && c !== SP && c !== HT)) return this.#fail(i, 'invalid chunk extension');
          i++;
          break;
        }
        case ParseState.CHUNK_SIZE_LF:
          if (b[i] !== LF) return this.#fail(i, 'chunk size line not ended by CRLF');
          i++;
          if (this.#remaining === 0) {
            this.state = ParseState.TRAILER_START;
          } else {
            this.state = ParseState.CHUNK_DATA;
          }
          break;
        case ParseState.CHUNK_DATA: {
          const n = Math.min(this.#remaining, end - i);
          this.#remaining -= n;
          if (this.#remaining === 0) this.state = ParseState.CHUNK_DATA_CR;
          this.#sink.onResponseBody(b, i, i + n);
          i += n;
          break;
        }
        case ParseState.CHUNK_DATA_CR:
          if (b[i] !== CR) return this.#fail(i, 'chunk data not followed by CRLF');
          this.state = ParseState.CHUNK_DATA_LF;
          i++;
          break;
        case ParseState.CHUNK_DATA_LF:
          if (b[i] !== LF) return this.#fail(i, 'chunk data not followed by CRLF');
          this.#startChunk();
          i++;
          break;
        case ParseState.TRAILER_START:
          this.state = b[i] === CR ? ParseState.TRAILER_END_LF : ParseState.TRAILER_LINE;
          if (++this.#trailerBytes > this.#maxHead) return this.#fail(i, 'trailers too large');
          i++;
          break;
        case ParseState.TRAILER_LINE: {
          // Trailer fields are dropped (nothing downstream could use them): skip to the line's CR.
          let j = i;
          while (j < end && b[j] !== CR) {
            if (b[j] === LF) return this.#fail(j, 'trailer line not ended by CRLF');
            j++;
          }
          this.#trailerBytes += j - i;
          if (this.#trailerBytes > this.#maxHead) return this.#fail(j, 'trailers too large');
          if (j < end) {
            this.state = ParseState.TRAILER_LINE_LF;
            j++;
          }
          i = j;
          break;
        }
        case ParseState.TRAILER_LINE_LF:
          if (b[i] !== LF) return this.#fail(i, 'trailer line not ended by CRLF');
          this.state = ParseState.TRAILER_START;
          i++;
          break;
        case ParseState.TRAILER_END_LF:
          if (b[i] !== LF) return this.#fail(i, 'chunked body not ended by CRLF');
          this.state = ParseState.DONE;
          i++;
          break;
        default:
          // DONE, UPGRADED, ERROR, STOPPED: whatever follows is not this response's.
          return i;
      }
    }
    return i;
  }

  /**
   * The connection closed (EOF). Returns whether that completed the response (a body delimited by the close);
   * otherwise the response was cut short (or never began: sawBytes tells which).
   */
  finish(): boolean {
    if (this.state === ParseState.UNTIL_EOF) this.state = ParseState.DONE;
    return this.state === ParseState.DONE;
  }

  #startChunk(): void {
    this.state = ParseState.CHUNK_SIZE;
    this.#remaining = 0;
    this.#chunkDigits = 0;
    this.#chunkExt = false;
  }

  #fail(at: number, why: string): number {
    this.state = ParseState.ERROR;
    this.error = why;
    return at;
  }

  /** Finds the end of the head (gathering it across reads when needed), then parses it and sets up the body. */
  #execHead(b: Buffer, start: number, end: number): number {
    const max = this.#maxHead;
    if (this.#headLen === 0) {
      // The common case: the whole head in this read. indexOf may look past `end` (stale bytes of a shared
      // buffer), but the first match past it means there is none before it.
      const at = b.indexOf(CRLFCRLF, start);
      if (at >= 0 && at + 4 <= end) {
        if (at + 4 - start > max) return this.#fail(start, 'response head too large');
        return this.#headEnd(b, start, at + 2, at + 4);
      }
      const n = end - start;
      if (n >= max) return this.#fail(start, 'response head too large');
      const hb = (this.#headBuf ??= Buffer.allocUnsafe(max));
      b.copy(hb, 0, start, end);
      this.#headLen = n;
      return end;
    }
    const hb = this.#headBuf!;
    const had = this.#headLen;
    const take = Math.min(end - start, max - had);
    b.copy(hb, had, start, start + take);
    const len = had + take;
    const at = hb.indexOf(CRLFCRLF, had > 3 ? had - 3 : 0);
    if (at >= 0 && at + 4 <= len) {
      this.#headLen = 0;
      // #headEnd's `next` is in `b`: the bytes of it this head used are those up to at + 4 in hb.
      return this.#headEnd(hb, 0, at + 2, start + (at + 4 - had));
    }
    if (len >= max) return this.#fail(start, 'response head too large');
    this.#headLen = len;
    return end;
  }

  /** A complete head in `h[start, end)` (its last CRLF included); `next` is where the input continues. */
  #headEnd(h: Buffer, start: number, end: number, next: number): number {
    if (!this.#parseHead(h, start, end)) return next;
    const status = this.status;
    if (status < 200) {
      if (status === 101) {
        if (!this.#expectUpgrade) {
          this.unexpectedUpgrade = true;
          return this.#fail(next, 'a 101 to a request that did not ask to upgrade');
        }
        this.state = ParseState.UPGRADED;
        this.#sink.onResponseHead(status, this.headers);
        return next;
      }
      // Interim (100 Continue, 102, 103 Early Hints): the final response follows on the same connection.
      this.state = ParseState.HEAD;
      return next;
    }
    // Set the body's framing before the callback: it may stop() the parser.
    if (this.#isHead || status === 204 || status === 304) {
      this.state = ParseState.DONE;
    } else if (this.#hasTransferEncoding) {
      if (this.#chunked) this.#startChunk();
      else {
        // RFC 9112 §6.3: a response whose final coding is not chunked is delimited by the connection's close.
        this.state = ParseState.UNTIL_EOF;
        this.keepAlive = false;
      }
    } else if (this.#contentLength >= 0) {
      this.#remaining = this.#contentLength;
      this.state = this.#contentLength === 0 ? ParseState.DONE : ParseState.LENGTH;
    } else {
      this.state = ParseState.UNTIL_EOF;
      this.keepAlive = false;
    }
    this.#sink.onResponseHead(status, this.headers);
    return next;
  }

  /** Status line and header fields of `h[start, end)`; false (state ERROR) when malformed. */
  #parseHead(h: Buffer, start: number, end: number): boolean {
    const n = end - start;
    if (n === this.#lastHeadLen && h.compare(this.#lastHead!, 0, n, start, end) === 0) {
      // The same bytes as the last head: the same result, already in headers and the framing fields (only a head
      // parsed whole sets them, and any other parse forgets this one first).
      this.status = this.#lastStatus;
      this.keepAlive = this.#lastKeepAlive;
      this.keepAliveHintMs = this.#lastHintMs;
      return true;
    }
    this.#lastHeadLen = -1;
    if (!this.#parseHeadBytes(h, start, end)) return false;
    if (n <= this.#maxHead) {
      const last = (this.#lastHead ??= Buffer.allocUnsafe(this.#maxHead));
      h.copy(last, 0, start, end);
      this.#lastHeadLen = n;
      this.#lastStatus = this.status;
      this.#lastKeepAlive = this.keepAlive;
      this.#lastHintMs = this.keepAliveHintMs;
    }
    return true;
  }

  #parseHeadBytes(h: Buffer, start: number, end: number): boolean {
    const headers = this.headers;
    if (headers.length !== 0) headers.length = 0;
    this.#contentLength = -1;
    this.#hasTransferEncoding = false;
    this.#chunked = false;
    this.#close = false;
    this.keepAliveHintMs = -1;
    // "HTTP/1.x NNN[ reason]\r\n"
    if (
      end - start < 14 ||
      h[start] !== 72 /* H */ ||
      h[start + 1] !== 84 /* T */ ||
      h[start + 2] !== 84 /* T */ ||
      h[start + 3] !== 80 /* P */ ||
      h[start + 4] !== 47 /* / */ ||
      h[start + 5] !== 49 /* 1 */ ||
      h[start + 6] !== 46 /* . */
    ) {
      return this.#bad('invalid status line');
    }
    const minor = h[start + 7] - 48;
    if ((minor !== 0 && minor !== 1) || h[start + 8] !== SP) return this.#bad('invalid status line');
    const d0 = h[start + 9] - 48;
    const d1 = h[start + 10] - 48;
    const d2 = h[start + 11] - 48;
    if (d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.#bad('invalid status code');
    this.status = d0 * 100 + d1 * 10 + d2;
    this.#minor = minor;
    let p = start + 12;
    if (h[p] === SP) {
      for (p++; h[p] !== CR; p++) {
        const c = h[p];
        if ((c < 0x20 && c !== HT) || c === 0x7f) return this.#bad('invalid reason phrase');
      }
    } else if (h[p] !== CR) {
      return this.#bad('invalid status line');
    }
    if (h[p + 1] !== LF) return this.#bad('status line not ended by CRLF');
    p += 2;
    while (p < end) {
      // field-name: tchar only, directly followed by the colon (no obs-fold, no space before the colon).
      const ns = p;
      while (TCHAR[h[p]] === 1) p++;
      if (p === ns || h[p] !== 58 /* : */) return this.#bad(p === ns ? 'invalid header line' : 'invalid header name');
      const ne = p;
      p++;
      while (h[p] === SP || h[p] === HT) p++;
      const vs = p;
      for (; h[p] !== CR; p++) {
        const c = h[p];
        if ((c < 0x20 && c !== HT) || c === 0x7f) return this.#bad('invalid character in a header value');
      }
      if (h[p + 1] !== LF) return this.#bad('header line not ended by CRLF');
      let ve = p;
      while (ve > vs && (h[ve - 1] === SP || h[ve - 1] === HT)) ve--;
      p += 2;
      if (!this.#field(h, ns, ne, vs, ve)) return false;
      const k = headers.length;
      headers.push(this.#text(k, h, ns, ne), this.#text(k + 1, h, vs, ve));
    }
    if (this.#hasTransferEncoding && this.#contentLength >= 0) return this.#bad('both Content-Length and Transfer-Encoding');
    this.keepAlive = this.#minor === 1 && !this.#close;
    return true;
  }

  /**
   * `h[start, end)` as a latin1 string: the one at position `k` of the previous head when the bytes are the same.
   * An endpoint sends much the same head every time (names, Server, Content-Type...), and comparing a few bytes
   * costs less than making a new string.
   */
  #text(k: number, h: Buffer, start: number, end: number): string {
    const last = this.#lastTexts;
    const prev = last[k];
    const n = end - start;
    if (prev !== undefined && prev.length === n) {
      let i = 0;
      while (i < n && h[start + i] === prev.charCodeAt(i)) i++;
      if (i === n) return prev;
    }
    const text = latin1(h, start, end);
    if (k < MAX_REMEMBERED_TEXTS) last[k] = text;
    return text;
  }

  /** Takes note of the fields that frame the body or decide the connection's reuse. */
  #field(h: Buffer, ns: number, ne: number, vs: number, ve: number): boolean {
    const len = ne - ns;
    if (len === 14 && nameIs(h, ns, len, N_CONTENT_LENGTH)) {
      if (ve === vs || ve - vs > 15) return this.#bad('invalid Content-Length');
      let n = 0;
      for (let i = vs; i < ve; i++) {
        const d = h[i] - 48;
        if (d < 0 || d > 9) return this.#bad('invalid Content-Length');
        n = n * 10 + d;
      }
      if (this.#contentLength >= 0 && this.#contentLength !== n) return this.#bad('conflicting Content-Length values');
      this.#contentLength = n;
    } else if (len === 17 && nameIs(h, ns, len, N_TRANSFER_ENCODING)) {
      this.#hasTransferEncoding = true;
      // The last field's last coding decides: "…, chunked" (any case) at its end.
      const cs = ve - 7;
      this.#chunked = cs >= vs && nameIs(h, cs, 7, CHUNKED) && (cs === vs || h[cs - 1] === 44 || h[cs - 1] === SP || h[cs - 1] === HT);
    } else if (len === 10 && nameIs(h, ns, len, N_CONNECTION)) {
      if (ve - vs === 10 && nameIs(h, vs, 10, N_KEEP_ALIVE)) return true;
      const v = latin1(h, vs, ve).toLowerCase();
      if (v === 'close' || v.split(',').some((t) => t.trim() === 'close')) this.#close = true;
    } else if (len === 10 && nameIs(h, ns, len, N_KEEP_ALIVE)) {
      const m = /(?:^|[,\s])timeout\s*=\s*(\d{1,9})/i.exec(latin1(h, vs, ve));
      // Several: the shortest (closing early is harmless, reusing a closed connection is not).
      if (m !== null) this.keepAliveHintMs = this.keepAliveHintMs < 0 ? Number(m[1]) * 1000 : Math.min(this.keepAliveHintMs, Number(m[1]) * 1000);
    }
    return true;
  }

  #bad(why: string): boolean {
    this.state = ParseState.ERROR;
    this.error = why;
    return false;
  }
}
