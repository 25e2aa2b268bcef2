/**
 * The client side of a SOCKS5 handshake (RFC 1928), with user name and password authentication (RFC 1929), as a
 * sans-I/O state machine: `start()` gives the greeting, `receiveData()` takes the proxy's bytes and says what to
 * send next, until the tunnel is open. It owns no socket and no timer: the I/O layer writes what it is given and
 * bounds the whole exchange with `openTimeoutMs`.
 *
 * Every message of the proxy has a size known from its first bytes (at most 262 bytes for a reply that names a
 * domain), and each is checked as soon as its fixed part is here, so a proxy that answers garbage fails at once and
 * nothing is buffered beyond one message. Bytes after the final reply belong to the tunnel and are handed back.
 */
import { ConfigError, InvalidStateError, ProxyError } from '../errors.js';
import type { ProxyCredentials } from './proxy-connect.js';

/** RFC 1928 §3: the protocol version that opens every message. */
export const SOCKS_VERSION = 5;
/** RFC 1929 §2: the version of the user name / password sub-negotiation. */
const AUTH_VERSION = 1;

/** RFC 1928 §3: authentication methods. */
export const SocksMethod = {
  NO_AUTHENTICATION: 0x00,
  USER_PASSWORD: 0x02,
  NO_ACCEPTABLE_METHODS: 0xff,
} as const;

/** RFC 1928 §4: the CONNECT command. */
const CMD_CONNECT = 0x01;

/** RFC 1928 §4-5: address types. */
const AddressType = { IPV4: 0x01, DOMAIN: 0x03, IPV6: 0x04 } as const;

/** RFC 1928 §6: the meaning of each reply code other than 0 (succeeded). */
export const SOCKS_REPLIES: Readonly<Record<number, string>> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

/** RFC 1929 §2 and RFC 1928 §5: user names, passwords and domain names are 1 to 255 bytes. */
const MAX_FIELD = 255;

/** What the handshake needs. */
export interface Socks5Options {
  /** The proxy's URL without credentials, for messages (`socks5h://127.0.0.1:1080`). */
  readonly proxy: string;
  /** The tunnel's destination: a domain name, or an IP literal (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** Offered with RFC 1929 besides "no authentication"; only "no authentication" when `null` or absent. */
  readonly credentials?: ProxyCredentials | null;
}

/** What to do after `receiveData()`: send bytes and wait for more, or use the tunnel. */
export type Socks5Step =
  | { readonly done: false; readonly send: Buffer | null }
  | { readonly done: true; /** Bytes of the tunnel that came with the final reply. */ readonly rest: Buffer };

/** States of the handshake (a const object, not an enum: erasable syntax). */
const State = { START: 0, METHOD: 1, AUTH: 2, REPLY: 3, DONE: 4 } as const;
type State = (typeof State)[keyof typeof State];

const EMPTY = Buffer.alloc(0);

/**
 * One SOCKS5 CONNECT handshake. Call `start()` once and send its bytes; then pass every chunk from the proxy to
 * `receiveData()`, sending what it returns, until it returns `done`; call `end()` if the proxy closes first.
 */
export class Socks5Handshake {
  private state: State = State.START;
  private buffered: Buffer = EMPTY;
  private readonly request: Buffer;
  private readonly auth: Buffer | null;

  /** @throws ConfigError for a destination or credentials that SOCKS5 cannot carry */
  constructor(private readonly options: Socks5Options) {
    this.request = Buffer.concat([Buffer.from([SOCKS_VERSION, CMD_CONNECT, 0x00]), encodeAddress(options.host), port(options.port)]);
    const credentials = options.credentials ?? null;
    this.auth = credentials === null ? null : encodeCredentials(credentials);
  }

  /** The greeting: the methods offered (no authentication, plus user name and password when there are credentials). */
  start(): Buffer {
    if (this.state !== State.START) throw new InvalidStateError('the SOCKS5 handshake has already started');
    this.state = State.METHOD;
    return this.auth === null
      ? Buffer.from([SOCKS_VERSION, 1, SocksMethod.NO_AUTHENTICATION])
      : Buffer.from([SOCKS_VERSION, 2, SocksMethod.NO_AUTHENTICATION, SocksMethod.USER_PASSWORD]);
  }

  /**
   * Takes bytes from the proxy.
   * @returns what to send (or `null` while a message is incomplete), or `done` with the tunnel's first bytes
   * @throws ProxyError when the proxy refuses (a reply code, credentials, no acceptable method) or breaks the protocol
   * @throws InvalidStateError before `start()` or after `done`
   */
  receiveData(chunk: Buffer): Socks5Step {
    if (this.state === State.START || this.state === State.DONE) {
      throw new InvalidStateError(this.state === State.START ? 'call start() before receiveData()' : 'the SOCKS5 handshake is done; the bytes belong to the tunnel');
    }
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    // One message at a time: a proxy never has two to send before it has read what the last one asks for.
    return this.step() ?? { done: false, send: null };
  }

  /**
   * Tells the handshake that the proxy closed the connection.
   * @throws ProxyError always, unless the handshake was done
   */
  end(): void {
    if (this.state === State.DONE) return;
    throw new ProxyError(`proxy ${this.options.proxy} closed the connection during the SOCKS5 handshake`, { proxy: this.options.proxy });
  }

  /** Parses one message of the proxy if it is complete; `null` when more bytes are needed. */
  private step(): Socks5Step | null {
    switch (this.state) {
      case State.METHOD:
        return this.methodReply();
      case State.AUTH:
        return this.authReply();
      default:
        return this.connectReply();
    }
  }

  /** RFC 1928 §3: VER METHOD. */
  private methodReply(): Socks5Step | null {
    const bytes = this.buffered;
    const { proxy } = this.options;
    if (bytes.length > 0 && bytes[0] !== SOCKS_VERSION) {
      throw new ProxyError(`proxy ${proxy} is not a SOCKS5 proxy: its answer starts with byte ${bytes[0]} instead of 5`, { proxy });
    }
    if (bytes.length < 2) return null;
    const method = bytes[1]!;
    this.consume(2);
    if (method === SocksMethod.NO_AUTHENTICATION) return this.sendRequest();
    if (method === SocksMethod.USER_PASSWORD && this.auth !== null) {
      this.state = State.AUTH;
      return { done: false, send: this.auth };
    }
    if (method === SocksMethod.NO_ACCEPTABLE_METHODS) {
      throw new ProxyError(
        this.auth === null
          ? `proxy ${proxy} requires authentication; give a user and password in the proxy URL (socks5://user:password@host:port)`
          : `proxy ${proxy} accepts none of the authentication methods offered (none, user name and password)`,
        { proxy, reason: 'no acceptable authentication methods' },
      );
    }
    throw new ProxyError(`proxy ${proxy} chose authentication method ${method}, which was not offered`, { proxy });
  }

  /** RFC 1929 §2: VER STATUS. */
  private authReply(): Socks5Step | null {
    const bytes = this.buffered;
    const { proxy } = this.options;
    if (bytes.length < 2) return null;
    // RFC 1929 §2 says version 1; some proxies echo 5. Only the status decides.
    const version = bytes[0]!;
    const status = bytes[1]!;
    this.consume(2);
    if (version !== AUTH_VERSION && version !== SOCKS_VERSION) {
      throw new ProxyError(`proxy ${proxy} answered the authentication with version ${version}`, { proxy });
    }
    if (status !== 0) {
      throw new ProxyError(`proxy ${proxy} refused the user name and password (RFC 1929 status ${status})`, {
        proxy,
        reason: 'authentication failed',
      });
    }
    return this.sendRequest();
  }

  /** RFC 1928 §6: VER REP RSV ATYP BND.ADDR BND.PORT; REP is checked as soon as it is here. */
  private connectReply(): Socks5Step | null {
    const bytes = this.buffered;
    const { proxy } = this.options;
    if (bytes.length > 0 && bytes[0] !== SOCKS_VERSION) {
      throw new ProxyError(`proxy ${proxy} answered the CONNECT request with version ${bytes[0]} instead of 5`, { proxy });
    }
    if (bytes.length >= 2 && bytes[1] !== 0) {
      const status = bytes[1]!;
      const reason = SOCKS_REPLIES[status] ?? 'unassigned reply code';
      throw new ProxyError(`proxy ${proxy} refused to connect to ${this.destination()}: SOCKS reply ${status} (${reason})`, {
        proxy,
        status,
        reason,
      });
    }
    if (bytes.length < 5) return null;
    const type = bytes[3]!;
    const addressLength =
      type === AddressType.IPV4 ? 4 : type === AddressType.IPV6 ? 16 : type === AddressType.DOMAIN ? 1 + bytes[4]! : -1;
    if (addressLength === -1) throw new ProxyError(`proxy ${proxy} answered with unknown address type ${type}`, { proxy });
    const length = 4 + addressLength + 2;
    if (bytes.length < length) return null;
    this.consume(length);
    this.state = State.DONE;
    const rest = this.buffered;
    this.buffered = EMPTY;
    return { done: true, rest };
  }

  private sendRequest(): Socks5Step {
    this.state = State.REPLY;
    return { done: false, send: this.request };
  }

  private consume(n: number): void {
    this.buffered = this.buffered.length === n ? EMPTY : this.buffered.subarray(n);
  }

  private destination(): string {
    const { host, port: p } = this.options;
    return host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`;
  }
}

/**
 * ATYP and address of a destination: an IPv4 or IPv6 literal as its bytes, anything else as a domain name that the
 * proxy resolves (RFC 1928 §5).
 * @throws ConfigError for a name that is empty, longer than 255 bytes or not ASCII, or a malformed IPv6 literal
 */
export function encodeAddress(host: string): Buffer {
  const v4 = parseIpv4(host);
  if (v4 !== null) return Buffer.from([AddressType.IPV4, ...v4]);
  if (host.includes(':')) {
    const v6 = parseIpv6(host);
    if (v6 === null) throw new ConfigError(`invalid IPv6 address ${JSON.stringify(host)}`, 'url', host);
    return Buffer.concat([Buffer.from([AddressType.IPV6]), v6]);
  }
  if (host.length === 0 || host.length > MAX_FIELD || !/^[\x21-\x7e]+$/.test(host)) {
    throw new ConfigError(`a SOCKS5 destination is an ASCII name of 1 to 255 bytes; got ${JSON.stringify(host)}`, 'url', host);
  }
  return Buffer.concat([Buffer.from([AddressType.DOMAIN, host.length]), Buffer.from(host, 'latin1')]);
}

function port(value: number): Buffer {
  if (!Number.isInteger(value) || value < 1 || value > 65_535) {
    throw new ConfigError(`invalid port ${value} for a SOCKS5 destination`, 'url', value);
  }
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

/** RFC 1929 §2: VER ULEN UNAME PLEN PASSWD, each field 1 to 255 bytes of UTF-8. */
function encodeCredentials({ username, password }: ProxyCredentials): Buffer {
  const user = Buffer.from(username, 'utf8');
  const pass = Buffer.from(password, 'utf8');
  for (const [what, field] of [['user name', user], ['password', pass]] as const) {
    if (field.length === 0 || field.length > MAX_FIELD) {
      throw new ConfigError(`a SOCKS5 ${what} is 1 to 255 bytes (RFC 1929); got ${field.length}`, 'proxy', field.length);
    }
  }
  return Buffer.concat([Buffer.from([AUTH_VERSION, user.length]), user, Buffer.from([pass.length]), pass]);
}

/** The 4 bytes of a dotted-quad IPv4 literal, or `null`. */
function parseIpv4(text: string): number[] | null {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (match === null) return null;
  const bytes = match.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : null;
}

/** The 16 bytes of an IPv6 literal (RFC 4291 §2.2: `::` once, an IPv4 tail allowed), or `null`. */
function parseIpv6(text: string): Buffer | null {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      const v4 = i === pieces.length - 1 && piece.includes('.') ? parseIpv4(piece) : null;
      if (v4 !== null) {
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = Buffer.alloc(16);
  all.forEach((group, i) => out.writeUInt16BE(group, i * 2));
  return out;
}
