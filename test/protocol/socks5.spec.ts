/**
 * The SOCKS5 client handshake (RFC 1928, RFC 1929) in bytes: the greeting, the method choice, user name and
 * password, the CONNECT request for each address type, every reply code as a typed ProxyError with its status, and
 * garbage or split answers.
 */
import { describe, expect, it } from '@jest/globals';
import { ConfigError, InvalidStateError, ProxyError } from '../../lib/errors.js';
import { encodeAddress, Socks5Handshake, SOCKS_REPLIES, type Socks5Step } from '../../lib/protocol/socks5.js';

const PROXY = 'socks5h://127.0.0.1:1080';
const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const SUCCESS_V4 = hex('05 00 00 01 7f000001 1f90');

function handshake(options: Partial<ConstructorParameters<typeof Socks5Handshake>[0]> = {}): Socks5Handshake {
  return new Socks5Handshake({ proxy: PROXY, host: 'example.com', port: 443, ...options });
}

function caught(run: () => unknown): ProxyError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ProxyError);
    return error as ProxyError;
  }
  throw new Error('expected a ProxyError');
}

describe('Socks5Handshake', () => {
  it('offers no authentication, sends CONNECT with the domain name, and opens the tunnel', () => {
    const h = handshake();
    expect(h.start()).toEqual(hex('05 01 00'));
    expect(h.receiveData(hex('05 00'))).toEqual({ done: false, send: Buffer.concat([hex('05 01 00 03 0b'), Buffer.from('example.com'), hex('01bb')]) });
    expect(h.receiveData(SUCCESS_V4)).toEqual({ done: true, rest: Buffer.alloc(0) });
    h.end(); // nothing to say once done
  });

  it('authenticates with user name and password (RFC 1929) when the proxy asks', () => {
    const h = handshake({ credentials: { username: 'alice', password: 'pässword' } });
    expect(h.start()).toEqual(hex('05 02 00 02'));
    const auth = h.receiveData(hex('05 02')) as Extract<Socks5Step, { done: false }>;
    expect(auth.send).toEqual(Buffer.concat([hex('01 05'), Buffer.from('alice'), hex('09'), Buffer.from('pässword')]));
    expect(h.receiveData(hex('01 00'))).toMatchObject({ done: false });
    expect(h.receiveData(SUCCESS_V4)).toMatchObject({ done: true });
    // A proxy that echoes version 5 in the authentication reply is tolerated.
    const echo = handshake({ credentials: { username: 'a', password: 'b' } });
    echo.start();
    echo.receiveData(hex('05 02'));
    expect(echo.receiveData(hex('05 00'))).toMatchObject({ done: false });
  });

  it('takes the answers split at every byte and hands back the tunnel bytes that follow the reply', () => {
    const answers = Buffer.concat([hex('05 00'), hex('05 00 00 03 09'), Buffer.from('localhost'), hex('0050'), Buffer.from('frames')]);
    for (let cut = 1; cut < answers.length; cut++) {
      const h = handshake();
      h.start();
      const steps = [h.receiveData(answers.subarray(0, cut))];
      if (!steps[0]!.done) steps.push(h.receiveData(answers.subarray(cut)));
      // The whole answer in two parts: either part can hold the method reply and the start of the CONNECT reply.
      const last = steps[steps.length - 1]!;
      if (last.done) expect(last.rest.toString()).toBe('frames');
      else expect(h.receiveData(Buffer.alloc(0))).toEqual({ done: true, rest: Buffer.from('frames') });
    }
    const byByte = handshake();
    byByte.start();
    let result: Socks5Step = { done: false, send: null };
    for (const byte of hex('05 00 05 00 00 04 00000000000000000000000000000001 1f90')) result = byByte.receiveData(Buffer.from([byte]));
    expect(result).toEqual({ done: true, rest: Buffer.alloc(0) });
  });

  it.each(Object.entries(SOCKS_REPLIES))('reports reply %s as ProxyError with that status (%s)', (code, meaning) => {
    const h = handshake({ host: '::1', port: 8080 });
    h.start();
    h.receiveData(hex('05 00'));
    const error = caught(() => h.receiveData(hex(`05 0${code}`)));
    expect(error).toMatchObject({ code: 'WS_ERR_PROXY', proxy: PROXY, status: Number(code), reason: meaning, httpStatus: 502 });
    expect(error.message).toBe(`proxy ${PROXY} refused to connect to [::1]:8080: SOCKS reply ${code} (${meaning})`);
  });

  it('names an unassigned reply code', () => {
    const h = handshake();
    h.start();
    h.receiveData(hex('05 00'));
    expect(caught(() => h.receiveData(hex('05 2a 00'))).message).toMatch(/SOCKS reply 42 \(unassigned reply code\)$/);
  });

  it('refuses authentication problems with what to do', () => {
    const none = handshake();
    none.start();
    expect(caught(() => none.receiveData(hex('05 ff'))).message).toBe(
      `proxy ${PROXY} requires authentication; give a user and password in the proxy URL (socks5://user:password@host:port)`,
    );
    const withCredentials = handshake({ credentials: { username: 'a', password: 'b' } });
    withCredentials.start();
    expect(caught(() => withCredentials.receiveData(hex('05 ff'))).message).toMatch(/accepts none of the authentication methods offered/);
    const refused = handshake({ credentials: { username: 'a', password: 'wrong' } });
    refused.start();
    refused.receiveData(hex('05 02'));
    expect(caught(() => refused.receiveData(hex('01 01')))).toMatchObject({ reason: 'authentication failed', status: undefined });
    const notOffered = handshake();
    notOffered.start();
    expect(caught(() => notOffered.receiveData(hex('05 02'))).message).toMatch(/chose authentication method 2, which was not offered/);
  });

  it('fails at the first wrong byte of garbage and when the proxy closes early', () => {
    const http = handshake();
    http.start();
    expect(caught(() => http.receiveData(Buffer.from('HTTP/1.1 400 Bad Request\r\n'))).message).toBe(
      `proxy ${PROXY} is not a SOCKS5 proxy: its answer starts with byte 72 instead of 5`,
    );
    const badAuth = handshake({ credentials: { username: 'a', password: 'b' } });
    badAuth.start();
    badAuth.receiveData(hex('05 02'));
    expect(caught(() => badAuth.receiveData(hex('07 00'))).message).toMatch(/answered the authentication with version 7/);
    const badReply = handshake();
    badReply.start();
    badReply.receiveData(hex('05 00'));
    expect(caught(() => badReply.receiveData(hex('04 00'))).message).toMatch(/answered the CONNECT request with version 4 instead of 5/);
    const badType = handshake();
    badType.start();
    badType.receiveData(hex('05 00'));
    expect(caught(() => badType.receiveData(hex('05 00 00 09 00'))).message).toMatch(/unknown address type 9/);
    const closed = handshake();
    closed.start();
    closed.receiveData(hex('05'));
    expect(caught(() => closed.end()).message).toBe(`proxy ${PROXY} closed the connection during the SOCKS5 handshake`);
  });

  it('is used in order: start() once, then data, nothing after done', () => {
    const h = handshake();
    expect(() => h.receiveData(hex('05 00'))).toThrow(InvalidStateError);
    h.start();
    expect(() => h.start()).toThrow(InvalidStateError);
    h.receiveData(hex('05 00'));
    h.receiveData(SUCCESS_V4);
    expect(() => h.receiveData(hex('00'))).toThrow('the SOCKS5 handshake is done');
  });

  it('refuses destinations and credentials that SOCKS5 cannot carry', () => {
    expect(() => handshake({ host: 'x'.repeat(256) })).toThrow('a SOCKS5 destination is an ASCII name of 1 to 255 bytes');
    expect(() => handshake({ host: 'exämple.com' })).toThrow(ConfigError);
    expect(() => handshake({ host: '' })).toThrow(ConfigError);
    expect(() => handshake({ port: 0 })).toThrow('invalid port 0');
    expect(() => handshake({ credentials: { username: '', password: 'p' } })).toThrow('a SOCKS5 user name is 1 to 255 bytes (RFC 1929); got 0');
    expect(() => handshake({ credentials: { username: 'u', password: 'p'.repeat(256) } })).toThrow('a SOCKS5 password is 1 to 255 bytes');
  });
});

describe('encodeAddress', () => {
  it('encodes IPv4, IPv6 (compressed, full, with an IPv4 tail) and domain names', () => {
    expect(encodeAddress('127.0.0.1')).toEqual(hex('01 7f000001'));
    expect(encodeAddress('::1')).toEqual(hex('04 00000000000000000000000000000001'));
    expect(encodeAddress('fe80::1:2')).toEqual(hex('04 fe800000000000000000000000010002'));
    expect(encodeAddress('1:2:3:4:5:6:7:8')).toEqual(hex('04 00010002000300040005000600070008'));
    expect(encodeAddress('::ffff:127.0.0.1')).toEqual(hex('04 00000000000000000000ffff7f000001'));
    expect(encodeAddress('1::')).toEqual(hex('04 00010000000000000000000000000000'));
    expect(encodeAddress('256.1.1.1')).toEqual(Buffer.concat([hex('03 09'), Buffer.from('256.1.1.1')]));
    expect(encodeAddress('ws.example')).toEqual(Buffer.concat([hex('03 0a'), Buffer.from('ws.example')]));
  });

  it.each(['1:2:3:4:5:6:7:8:9', '1::2::3', '1:2:3:4:5:6:7', '::g', '1:2:3:4:5:6:7::8', '::1.2.3.256', '1:2'])('refuses the IPv6 literal %s', (text) => {
    expect(() => encodeAddress(text)).toThrow(`invalid IPv6 address ${JSON.stringify(text)}`);
  });
});
