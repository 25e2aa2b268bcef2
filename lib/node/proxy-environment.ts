/**
 * Which proxy, if any, a connection to one host uses: the explicit `proxy` option as it is, or the environment's
 * proxy for the URL's scheme unless the host is on loopback or listed in `noProxy` / NO_PROXY.
 *
 * Loopback (`localhost`, `*.localhost`, 127.0.0.0/8, ::1, and 0.0.0.0 / :: which reach this host) never goes through
 * the environment's proxy, as in Go's net/http: Python websockets 15 sent `ws://localhost` to the corporate proxy
 * of HTTPS_PROXY, which cannot reach the developer's machine. An explicit `proxy` option is used for loopback too:
 * that is how to ask for it.
 *
 * NO_PROXY entries, compared case-insensitively, are matched against the URL's host as written (no DNS lookup):
 * - `*` alone: every host;
 * - a name (`example.com`, `.example.com`, `*.example.com`): that name and every name below it;
 * - an IP literal (`10.1.2.3`, `::1`, `[::1]`) or a CIDR range (`10.0.0.0/8`, `fd00::/8`): those addresses;
 * - any of these with `:port` (`example.com:8443`, `[::1]:8080`): only that port (the scheme's default counts).
 */
import net from 'node:net';
import { parseProxyUrl, type ProxyUrl, type ResolvedProxy } from '../config/index.js';

/** What the choice depends on: the server's host (IPv6 without brackets), port and scheme. */
export interface ProxyTarget {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('0.0.0.0', 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addAddress('::', 'ipv6');
// IPv4-mapped loopback, which the URL parser writes as ::ffff:7f00:1.
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/**
 * The proxy for a connection to `target`, or `null` to connect directly.
 * @throws ConfigError when the environment variable that applies holds an invalid proxy URL (the message names it)
 */
export function proxyFor(resolved: ResolvedProxy, target: ProxyTarget): ProxyUrl | null {
  switch (resolved.mode) {
    case 'none':
      return null;
    case 'fixed':
      return resolved.proxy;
    case 'environment': {
      const variable = target.secure ? resolved.wss : resolved.ws;
      if (variable === null || isLoopback(target.host) || bypasses(resolved.noProxy, target.host, target.port)) return null;
      return parseProxyUrl(variable.value, variable.name);
    }
  }
}

/** Whether a host as written in a URL is this machine: `localhost` and its subdomains, or a loopback address. */
export function isLoopback(host: string): boolean {
  const name = normalizeHost(host);
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  const family = net.isIP(name);
  return family !== 0 && LOOPBACK.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

/** Whether a NO_PROXY list lets `host:port` bypass the proxy. */
export function bypasses(entries: readonly string[], host: string, port: number): boolean {
  const name = normalizeHost(host);
  const family = net.isIP(name);
  for (const raw of entries) {
    if (raw === '*') return true;
    const entry = splitEntry(raw.toLowerCase());
    if (entry.port !== null && entry.port !== port) continue;
    const slash = entry.host.indexOf('/');
    if (slash !== -1) {
      if (family !== 0 && inRange(name, family, entry.host.slice(0, slash), entry.host.slice(slash + 1))) return true;
      continue;
    }
    const entryFamily = net.isIP(entry.host);
    if (entryFamily !== 0) {
      if (family !== 0 && sameAddress(name, family, entry.host, entryFamily)) return true;
      continue;
    }
    // A domain: leading `*.` or `.` only say "and below", which every name entry means here (curl and Python).
    const domain = entry.host.replace(/^\*?\./, '').replace(/\.$/, '');
    if (domain !== '' && family === 0 && (name === domain || name.endsWith(`.${domain}`))) return true;
  }
  return false;
}

/** Lower case, without IPv6 brackets or a trailing dot (`Example.COM.` is `example.com`). */
function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 literal (whose colons are not a port). */
function splitEntry(entry: string): { host: string; port: number | null } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed !== null) return { host: bracketed[1]!, port: bracketed[2] === undefined ? null : Number(bracketed[2]) };
  const withPort = /^([^:]+):(\d+)$/.exec(entry);
  if (withPort !== null) return { host: withPort[1]!, port: Number(withPort[2]) };
  return { host: entry, port: null };
}

function sameAddress(address: string, family: number, entry: string, entryFamily: number): boolean {
  const list = new net.BlockList();
  list.addAddress(entry, entryFamily === 4 ? 'ipv4' : 'ipv6');
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

function inRange(address: string, family: number, network: string, bits: string): boolean {
  const networkFamily = net.isIP(network);
  const prefix = Number(bits);
  if (networkFamily === 0 || !/^\d+$/.test(bits) || prefix > (networkFamily === 4 ? 32 : 128)) return false;
  const list = new net.BlockList();
  list.addSubnet(network, prefix, networkFamily === 4 ? 'ipv4' : 'ipv6');
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
