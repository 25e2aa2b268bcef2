/**
 * `HandshakeRequest`: the opening handshake request, one object from the parser (or from what Node's `http` server
 * parsed) to the gateway. The request line's parts are fields; the header fields, their case-insensitive view and
 * the decoded query are made on first read. After the handshake a connection keeps the same object for its lifetime,
 * `compact()`ed: its header fields as one flat string of the lines as they were on the wire (a couple of hundred
 * bytes, where the parsed arrays, header view and query are about ten times that), read again only when someone
 * reads them. Most applications never do.
 */
import { HandshakeHeaders, type HeaderField } from './handshake-headers.js';

// RFC 9112 §3.2.2: absolute-form, `scheme://authority` followed by the path.
const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/;
const CRLF = '\r\n';

/** The path and query of a request target: what follows the authority of the absolute form, or the target itself. */
export function pathAndQueryOf(target: string): string {
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute === null) return target;
  const rest = target.slice(absolute[0].length);
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
}

/** A handshake request, as the parser and the server hand it on. */
export interface HandshakeRequest {
  /** The method, case-sensitive (RFC 9110 §9.1). */
  readonly method: string;
  /** The raw request-target, as on the request line. */
  readonly target: string;
  /** The path of the target without its query, not percent-decoded; `/` for an absolute-form target with none. */
  readonly path: string;
  /** `1.1` for HTTP/1.1; `2` for an HTTP/2 extended CONNECT (RFC 8441), whose `method` is `CONNECT`. */
  readonly httpVersion: string;
  /** The header field lines in order, names in their original case. */
  readonly rawHeaders: ReadonlyArray<HeaderField>;
  /** Case-insensitive lookup of the header fields. */
  readonly headers: HandshakeHeaders;
  /** The decoded query of the target. */
  readonly query: URLSearchParams;
}

/** The one implementation: the parts of the request line at once, the rest on first read, and `compact()`. */
export class ParsedHandshakeRequest implements HandshakeRequest {
  /** The method, case-sensitive (RFC 9110 §9.1). */
  readonly method: string;
  /** The raw request-target, as on the request line. */
  readonly target: string;
  /** The path of the target without its query, not percent-decoded; `/` for an absolute-form target with none. */
  readonly path: string;
  /** `1.1` for HTTP/1.1; `2` for an HTTP/2 extended CONNECT (RFC 8441), whose `method` is `CONNECT`. */
  readonly httpVersion: string;
  /** The header fields while parsed; `null` once compacted into `#lines`. */
  #fields: ReadonlyArray<HeaderField> | null;
  #lines = '';
  #headers: HandshakeHeaders | undefined;
  #query: URLSearchParams | undefined;

  /**
   * @param fields the header fields, already checked (names are tokens, values field values): they are kept as given
   */
  constructor(method: string, target: string, httpVersion: string, fields: ReadonlyArray<HeaderField>) {
    this.method = method;
    this.target = target;
    this.httpVersion = httpVersion;
    const pathAndQuery = pathAndQueryOf(target);
    const mark = pathAndQuery.indexOf('?');
    this.path = mark === -1 ? pathAndQuery : pathAndQuery.slice(0, mark);
    this.#fields = fields;
  }

  /** The header field lines in order, names in their original case. */
  get rawHeaders(): ReadonlyArray<HeaderField> {
    if (this.#fields === null) {
      const fields: HeaderField[] = [];
      if (this.#lines !== '') {
        for (const line of this.#lines.split(CRLF)) {
          const colon = line.indexOf(':');
          fields.push([line.slice(0, colon), line.slice(colon + 1)]);
        }
      }
      this.#fields = fields;
    }
    return this.#fields;
  }

  /** Case-insensitive lookup of the header fields. */
  get headers(): HandshakeHeaders {
    return (this.#headers ??= new HandshakeHeaders(this.rawHeaders));
  }

  /** The decoded query of the target. */
  get query(): URLSearchParams {
    if (this.#query === undefined) {
      const pathAndQuery = pathAndQueryOf(this.target);
      const mark = pathAndQuery.indexOf('?');
      this.#query = new URLSearchParams(mark === -1 ? '' : pathAndQuery.slice(mark + 1));
    }
    return this.#query;
  }

  /**
   * Keeps the header fields as one flat string and drops what was made from them, for a request kept for a
   * connection's lifetime; reading them again makes them again. Values keep their bytes: a field value holds no
   * CR or LF (RFC 9110 §5.5), so the lines split back exactly.
   */
  compact(): void {
    const fields = this.#fields;
    if (fields === null) return;
    let lines = '';
    for (let i = 0; i < fields.length; i++) lines += `${i === 0 ? '' : CRLF}${fields[i]![0]}:${fields[i]![1]}`;
    this.#lines = lines;
    this.#fields = null;
    this.#headers = undefined;
    this.#query = undefined;
  }
}
