import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RemoteProtocolError, UsageError } from '../../src/errors.js'
import {
  HttpResponseParser, MAX_HEADER_SECTION_BYTES, USER_AGENT, encodeHttpRequest, type HttpParseEnd, type HttpResponseParserOptions
} from '../../src/upnp/http-codec.js'

/** How a run of the parser ended: what end() (or the push that completed it) gave, or the refusal's message. */
type Outcome = HttpParseEnd | { kind: 'refused', message: string }

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'))
const text = (data: Uint8Array): string => Buffer.from(data).toString('latin1')

/** Feeds `pieces` in order, then closes the connection unless the response completed first. */
function run (pieces: Uint8Array[], options: HttpResponseParserOptions = { maxBodyBytes: 1024 }): Outcome {
  const parser = new HttpResponseParser(options)
  try {
    for (const piece of pieces) {
      const progress = parser.push(piece)
      if (progress.kind === 'complete') return progress
    }
    return parser.end()
  } catch (err) {
    if (!(err instanceof RemoteProtocolError)) throw err
    return { kind: 'refused', message: err.message }
  }
}

function parse (reply: string | Uint8Array, options?: HttpResponseParserOptions): Outcome {
  return run([typeof reply === 'string' ? bytes(reply) : reply], options)
}

/** The response of a reply that must parse, whole. */
function response (reply: string, options?: HttpResponseParserOptions): { status: number, reason: string, version: string, headers: Record<string, string>, body: string } {
  const outcome = parse(reply, options)
  assert.equal(outcome.kind, 'complete', JSON.stringify(outcome))
  const { status, reason, version, headers, body } = (outcome as Extract<Outcome, { kind: 'complete' }>).response
  return { status, reason, version, headers: { ...headers }, body: text(body) }
}

function refusal (reply: string | Uint8Array, options?: HttpResponseParserOptions): string {
  const outcome = parse(reply, options)
  assert.equal(outcome.kind, 'refused', JSON.stringify(outcome))
  return (outcome as { message: string }).message
}

/**
 * Whole, one byte at a time, and in two pieces split at every offset: always the same outcome. A
 * refusal may quote fewer of the router's bytes when fewer have arrived; the rest of it is the same.
 */
function assertSplitInvariant (reply: string, options?: HttpResponseParserOptions): Outcome {
  const all = bytes(reply)
  const same = (outcome: Outcome): Outcome => outcome.kind === 'refused' ? { kind: 'refused', message: outcome.message.replace(/".*"/s, '"..."') } : outcome
  const whole = run([all], options)
  assert.deepEqual(same(run(Array.from(all, (b) => Uint8Array.of(b)), options)), same(whole), 'one byte at a time')
  for (let i = 0; i <= all.length; i++) {
    assert.deepEqual(same(run([all.subarray(0, i), all.subarray(i)], options)), same(whole), `split at ${i}`)
  }
  return whole
}

// ---------------------------------------------------------------------------------------------
// Request encoding

test('a GET is request-line, Host, User-Agent, Connection: close and a blank line, nothing else', () => {
  const request = encodeHttpRequest({ method: 'GET', path: '/rootDesc.xml?x=1', host: '192.168.1.1:5000' })
  assert.equal(text(request),
    `GET /rootDesc.xml?x=1 HTTP/1.1\r\nHost: 192.168.1.1:5000\r\nUser-Agent: ${USER_AGENT}\r\nConnection: close\r\n\r\n`)
  assert.match(USER_AGENT, /^Node\.js\/\d+\.\d+\.\d+ UPnP\/1\.1 natmapper$/)
})

test('a POST adds Content-Length in UTF-8 bytes, then the caller\'s fields with their names as given, then the body', () => {
  const body = '<x>é</x>'
  const request = encodeHttpRequest({
    method: 'POST',
    path: '/ctl/IPConn',
    host: '[fe80::1]:49152',
    headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: '"urn:schemas-upnp-org:service:WANIPConnection:1#GetExternalIPAddress"' },
    body
  })
  assert.deepEqual(request, Buffer.concat([
    Buffer.from(`POST /ctl/IPConn HTTP/1.1\r\nHost: [fe80::1]:49152\r\nUser-Agent: ${USER_AGENT}\r\nConnection: close\r\nContent-Length: 9\r\n` +
      'Content-Type: text/xml; charset="utf-8"\r\nSOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:1#GetExternalIPAddress"\r\n\r\n', 'latin1'),
    Buffer.from(body, 'utf8')
  ]))
  assert.doesNotMatch(text(request), /Transfer-Encoding/i)
})

test('an empty body still gets Content-Length: 0; a byte body goes out as it is', () => {
  assert.match(text(encodeHttpRequest({ method: 'POST', path: '/', host: '10.0.0.1', body: '' })), /\r\nContent-Length: 0\r\n\r\n$/)
  const raw = Uint8Array.of(0, 0xff, 0x0d, 0x0a)
  const request = encodeHttpRequest({ method: 'POST', path: '/', host: '10.0.0.1', body: raw })
  assert.match(text(request), /\r\nContent-Length: 4\r\n\r\n/)
  assert.deepEqual(request.subarray(request.length - 4), Buffer.from(raw))
})

test('a caller\'s Host or User-Agent replaces the default in place; field values go out as Latin-1, like node:http', () => {
  const request = text(encodeHttpRequest({ method: 'GET', path: '/', host: '10.0.0.1', userAgent: 'ua', headers: { 'user-agent': 'Other/1.0', HOST: '10.0.0.1:80', 'X-Name': 'café' } }))
  assert.equal(request, 'GET / HTTP/1.1\r\nHOST: 10.0.0.1:80\r\nuser-agent: Other/1.0\r\nConnection: close\r\nX-Name: caf\u00e9\r\n\r\n')
  assert.equal(encodeHttpRequest({ method: 'GET', path: '/', host: 'h', headers: { 'X-Name': 'é' } }).at(-5), 0xe9)
})

test('no request splitting: CR, LF and NUL are refused in field names, field values and the request-target', () => {
  const base = { method: 'GET' as const, path: '/', host: '10.0.0.1' }
  const attempts: Array<Parameters<typeof encodeHttpRequest>[0]> = [
    { ...base, headers: { SOAPAction: 'x\r\nX-Injected: 1' } },
    { ...base, headers: { SOAPAction: 'x\nX-Injected: 1' } },
    { ...base, headers: { SOAPAction: 'x\rX' } },
    { ...base, headers: { SOAPAction: 'x\u0000' } },
    { ...base, headers: { 'X-A\r\nX-B': 'v' } },
    { ...base, headers: { 'X-A\u0000': 'v' } },
    { ...base, headers: { 'X A': 'v' } },
    { ...base, headers: { 'X:A': 'v' } },
    { ...base, headers: { '': 'v' } },
    { ...base, headers: { 'X-A': 'snow\u2603man' } },
    { ...base, headers: { 'X-A': 'bell\u0007' } },
    { ...base, host: '10.0.0.1\r\nX-Injected: 1' },
    { ...base, userAgent: 'ua\n' },
    { ...base, path: '/x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /' },
    { ...base, path: '/x\n' },
    { ...base, path: '/x\u0000' },
    { ...base, path: '/a b' },
    { ...base, path: 'x' },
    { ...base, path: '' },
    { ...base, method: 'GET /evil' as 'GET' }
  ]
  for (const attempt of attempts) {
    assert.throws(() => encodeHttpRequest(attempt), UsageError, JSON.stringify(attempt))
  }
  assert.throws(() => encodeHttpRequest(attempts[0]!), /the SOAPAction field contains a CR/)
  assert.throws(() => encodeHttpRequest(attempts[15]!), /request-target contains a NUL/)
})

test('the framing is the encoder\'s: no caller Content-Length, Transfer-Encoding or Connection, no field twice', () => {
  const base = { method: 'POST' as const, path: '/', host: '10.0.0.1', body: 'abc' }
  const refused: Array<Record<string, string>> = [{ 'Content-Length': '1' }, { 'transfer-encoding': 'chunked' }, { Connection: 'keep-alive' }, { SOAPAction: 'a', soapaction: 'b' }]
  for (const headers of refused) {
    assert.throws(() => encodeHttpRequest({ ...base, headers }), UsageError, JSON.stringify(headers))
  }
  // Tabs and obs-text are legal field content.
  assert.match(text(encodeHttpRequest({ ...base, headers: { 'X-A': 'a\tb\u00ff' } })), /\r\nX-A: a\tb\xff\r\n/)
})

// ---------------------------------------------------------------------------------------------
// Response parsing: the status-line and the field section

const OK = 'HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhello'

test('a Content-Length reply: version, status, reason, lower-case names, body', () => {
  assert.deepEqual(response(OK), { version: 'HTTP/1.1', status: 200, reason: 'OK', headers: { 'content-type': 'text/xml', 'content-length': '5' }, body: 'hello' })
  const outcome = assertSplitInvariant(OK)
  assert.equal(outcome.kind, 'complete')
})

test('status-lines: HTTP/1.0 and 1.1, any three-digit code, a reason with spaces, or none at all', () => {
  assert.equal(response('HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n').reason, 'Internal Server Error')
  assert.equal(response('HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n').version, 'HTTP/1.0')
  assert.deepEqual([response('HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n').status, response('HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n').reason], [404, ''])
  assert.equal(response('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n').reason, '')
  assert.equal(response('HTTP/1.1  299\tWeird  Reason \r\nContent-Length: 0\r\n\r\n').status, 299)
  assert.equal(response('HTTP/1.1 200 \u00c9t\u00e9 \u0001\r\nContent-Length: 0\r\n\r\n').reason, '\u00c9t\u00e9 \u0001')
})

test('what is not an HTTP status-line is refused', () => {
  for (const reply of ['HTTP/2 200 OK\r\n\r\n', 'HTTP/2.0 200 OK\r\n\r\n', 'HTTP/0.9 200 OK\r\n\r\n', 'HTTP/1.1 2000 OK\r\n\r\n', 'HTTP/1.1 20 OK\r\n\r\n',
    'HTTP/1.1 099 Odd\r\n\r\n', 'HTTP/1.1 abc\r\n\r\n', 'HTTP/1.1\r\n\r\n', 'HTTP/1.1 200OK\r\n\r\n', 'http/1.1 200 OK\r\n\r\n', ' HTTP/1.1 200 OK\r\n\r\n']) {
    assert.match(refusal(reply), /status-line|not HTTP/, JSON.stringify(reply))
  }
  assert.match(refusal('HTTP/2.0 200 OK\r\n\r\n'), /unsupported HTTP\/2\.0/)
})

test('something that is not HTTP at all is refused from its first bytes, without waiting for a line end', () => {
  assert.equal(assertSplitInvariant('SSH-2.0-OpenSSH_9.2\r\n').kind, 'refused')
  assert.match(refusal('SSH-2.0-OpenSSH_9.2\r\n'), /not HTTP: it starts with "SSH-2\.0-OpenSSH_9\.2/)
  const parser = new HttpResponseParser({ maxBodyBytes: 1024 })
  assert.equal(parser.push(bytes('HTT')).kind, 'more')
  assert.throws(() => parser.push(bytes('X')), RemoteProtocolError)
  assert.throws(() => new HttpResponseParser({ maxBodyBytes: 1024 }).push(bytes('<')), /not HTTP/)
  assert.throws(() => new HttpResponseParser({ maxBodyBytes: 1024 }).push(Uint8Array.of(0x16, 0x03, 0x01)), /not HTTP/, 'a TLS record')
})

test('a refusal is final: pushing more or closing gives the same error', () => {
  const parser = new HttpResponseParser({ maxBodyBytes: 1024 })
  let first: unknown
  assert.throws(() => parser.push(bytes('garbage')), (err) => { first = err; return err instanceof RemoteProtocolError })
  assert.throws(() => parser.push(bytes('HTTP/1.1 200 OK\r\n\r\n')), (err) => err === first)
  assert.throws(() => parser.end(), (err) => err === first)
})

test('empty lines before the status-line are skipped', () => {
  assert.equal(response('\r\n\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok').body, 'ok')
})

test('interim 1xx responses are skipped, their fields with them', () => {
  const reply = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
  assert.deepEqual(response(reply), { version: 'HTTP/1.1', status: 200, reason: 'OK', headers: { 'content-length': '2' }, body: 'ok' })
  assertSplitInvariant(reply)
  assert.deepEqual(parse('HTTP/1.1 100 Continue\r\n\r\n'), { kind: 'closed-early', missing: 'status-line' })
})

test('LF-only line ends, whitespace around values and before the colon', () => {
  const reply = 'HTTP/1.1 200 OK\nServer : miniupnpd \n  \nContent-Length:\t2 \n\nok'
  assert.deepEqual(response(reply).headers, { server: 'miniupnpd', 'content-length': '2' })
  assert.equal(response(reply).body, 'ok')
  assertSplitInvariant(reply)
})

test('lenient field bytes: control bytes and obs-text inside values are kept (node\'s lenient parser read them too)', () => {
  const reply = 'HTTP/1.1 200 OK\r\nServer: Router \u0001 firmware\u0000\r\nX-Latin: caf\u00e9\u0090\r\nX-Cr: a\rb\r\nX Spaced: s\r\nContent-Length: 2\r\n\r\nok'
  const { headers, body } = response(reply)
  assert.equal(headers['x spaced'], 's')
  assert.equal(headers.server, 'Router \u0001 firmware\u0000')
  assert.equal(headers['x-latin'], 'caf\u00e9\u0090', 'Latin-1, byte for byte')
  assert.equal(headers['x-cr'], 'a\rb')
  assert.equal(body, 'ok')
})

test('obs-fold continuation lines are appended to the previous value with a space; before any field they are dropped', () => {
  const reply = 'HTTP/1.1 200 OK\r\n  stray\r\nX-Folded: one\r\n two\r\n\tthree \r\nX-Empty:\r\n more\r\nContent-Length: 0\r\n\r\n'
  assert.deepEqual(response(reply).headers, { 'x-folded': 'one two three', 'x-empty': 'more', 'content-length': '0' })
  assertSplitInvariant(reply)
})

test('names are lower-cased and repeated fields joined with ", "; __proto__ is a field like any other', () => {
  const reply = 'HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nX-A: 3\r\nCONTENT-TYPE: text/xml\r\n__proto__: p\r\nContent-Length: 0\r\n\r\n'
  const headers = (parse(reply) as Extract<Outcome, { kind: 'complete' }>).response.headers
  assert.equal(headers['x-a'], '1, 2, 3')
  assert.equal(headers['content-type'], 'text/xml')
  assert.equal(Object.getOwnPropertyDescriptor(headers, '__proto__')?.value, 'p')
  assert.equal(Object.getPrototypeOf(headers), Object.prototype)
})

test('a field line without a colon or without a name is refused', () => {
  assert.match(refusal('HTTP/1.1 200 OK\r\nnot a field\r\n\r\n'), /without a colon: "not a field"/)
  assert.match(refusal('HTTP/1.1 200 OK\r\n: v\r\n\r\n'), /without a name/)
})

test('the header section is bounded, interim responses and an unterminated line included', () => {
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n'
  const fits = `${head}X: ${'a'.repeat(100 - head.length - 7)}\r\n\r\n`
  assert.equal(fits.length, 100)
  assert.equal(parse(fits, { maxBodyBytes: 10, maxHeaderBytes: 100 }).kind, 'complete')
  assert.match(refusal(fits.replace('X: ', 'X: a'), { maxBodyBytes: 10, maxHeaderBytes: 100 }), /header section is larger than the 100 bytes allowed/)
  // No line end ever: refused once the bound is passed, not at the end of the line.
  const parser = new HttpResponseParser({ maxBodyBytes: 10 })
  assert.equal(parser.push(bytes(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEADER_SECTION_BYTES - 30)}`)).kind, 'more')
  assert.throws(() => parser.push(bytes('a'.repeat(100))), /larger than the 16384 bytes allowed/)
  assert.match(refusal('HTTP/1.1 100 Continue\r\n\r\n'.repeat(1000)), /larger than the 16384 bytes/)
  assert.match(refusal('\r\n'.repeat(10000)), /larger than the 16384 bytes/)
  assert.match(refusal(`HTTP/1.1 200 OK\r\n${'X-Junk: yes\r\n'.repeat(2000)}`), /larger than the 16384 bytes/)
})

// ---------------------------------------------------------------------------------------------
// Response parsing: the body

test('chunked bodies: extensions ignored, upper and lower hex, leading zeros, trailers skipped', () => {
  const reply = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n00A \r\n0123456789\r\nf ; x\r\nABCDEFGHIJKLMNO\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n'
  const { body, headers } = response(reply)
  assert.equal(body, 'abc0123456789ABCDEFGHIJKLMNO')
  assert.equal(headers['x-trailer'], undefined, 'trailers are not fields of the response')
  assertSplitInvariant(reply)
  const lf = 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n'
  assert.equal(response(lf).body, 'abc')
  assertSplitInvariant(lf)
})

test('chunked wins over Content-Length; chunked must be the final coding, any other final coding reads until close', () => {
  assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n').body, 'ok')
  assert.equal(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n').body, 'ok')
  assert.equal(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n').body, '2\r\nok\r\n0\r\n\r\n')
  // RFC 2616's "identity" is no coding: Content-Length still frames the body.
  assert.equal(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nokJUNK').body, 'ok')
})

test('a chunk-size must be hex, bounded, and its data followed by CRLF', () => {
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
  for (const size of ['', 'g', '-1', '0x5', '1 2', '+5']) assert.match(refusal(`${head}${size}\r\nabcde\r\n0\r\n\r\n`), /bad chunk-size/, size)
  assert.match(refusal(`${head}fffffffffffffffff\r\n`), /larger than the 1024 bytes allowed/)
  assert.match(refusal(`${head}401\r\n`), /larger than the 1024 bytes allowed/, 'refused at the chunk-size, before its data')
  assert.equal(response(`${head}${'0'.repeat(500)}2\r\nok\r\n0\r\n\r\n`).body, 'ok')
  assert.match(refusal(`${head}2;${'x'.repeat(2000)}\r\nok\r\n0\r\n\r\n`), /chunk-size line is longer/)
  assert.match(refusal(`${head}2\r\nokay\r\n0\r\n\r\n`), /not followed by CRLF/)
  assert.match(refusal(`${head}2\r\nokX\r\n`), /not followed by CRLF/)
  // A chunk-size too small, and then no line end for a long while: refused at once, not buffered.
  const parser = new HttpResponseParser({ maxBodyBytes: 1024 })
  assert.equal(parser.push(bytes(`${head}2\r\nok\r`)).kind, 'more')
  assert.throws(() => parser.push(bytes('x')), /not followed by CRLF/)
})

test('the trailer section is bounded too, and a close right after the last chunk still gives the body', () => {
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n'
  assert.match(refusal(`${head}${'X-T: y\r\n'.repeat(3000)}\r\n`), /trailer section is larger than the 16384 bytes allowed/)
  assert.equal(response(head).body, 'ok')
  assert.equal(response(`${head}X-T: y\r\n`).body, 'ok')
  // Bounded on its own: a header section near the bound leaves the trailers theirs whole.
  const limits = { maxBodyBytes: 10, maxHeaderBytes: 100 }
  const nearBound = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: ${'a'.repeat(40)}\r\n\r\n2\r\nok\r\n0\r\n${'X-T: y\r\n'.repeat(11)}\r\n`
  assert.equal(response(nearBound, limits).body, 'ok')
  assert.match(refusal(nearBound.replace('X-T', 'X-T: y\r\nX-T: y\r\nX-T'), limits), /trailer section is larger than the 100 bytes allowed/)
})

test('Content-Length: trimmed digits; identical repeats and lists are one value, conflicting ones are refused', () => {
  assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length:   2  \r\n\r\nok').body, 'ok')
  assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok').body, 'ok')
  assert.equal(response('HTTP/1.1 200 OK\r\nContent-Length: 2, 02\r\n\r\nok').body, 'ok')
  assert.match(refusal('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk'), /conflicting Content-Length values "2, 3"/)
  assert.match(refusal('HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nokk'), /conflicting Content-Length/)
  for (const value of ['', '-1', '+2', '2a', '0x2', '2.0', '1 2', '\u00b2']) {
    assert.match(refusal(`HTTP/1.1 200 OK\r\nContent-Length: ${value}\r\n\r\nok`), /Content-Length .* is not a number/, value)
  }
})

test('a close-delimited body runs until end(); 204, 304 and a zero Content-Length have none', () => {
  const parser = new HttpResponseParser({ maxBodyBytes: 1024 })
  assert.equal(parser.push(bytes('HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\nfirst ')).kind, 'more')
  assert.equal(parser.push(bytes('second')).kind, 'more')
  const end = parser.end()
  assert.equal(end.kind, 'complete')
  assert.equal(text((end as Extract<Outcome, { kind: 'complete' }>).response.body), 'first second')
  assert.equal(assertSplitInvariant('HTTP/1.0 200 OK\r\n\r\n<root/>').kind, 'complete')
  for (const head of ['HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', 'HTTP/1.1 304 Not Modified\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']) {
    const progress = new HttpResponseParser({ maxBodyBytes: 1024 }).push(bytes(`${head}hello`))
    assert.equal(progress.kind, 'complete', head)
    assert.equal((progress as Extract<Outcome, { kind: 'complete' }>).response.body.length, 0, head)
  }
})

test('the byte cap: announced too large, grown too large (close-delimited or chunked), exactly at the cap is fine', () => {
  const cap = { maxBodyBytes: 10 }
  assert.equal(refusal('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n', { maxBodyBytes: 1024 }), 'the reply announces 100000 bytes, more than the 1024 allowed')
  assert.equal(refusal('HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n', cap), 'the reply announces 10000000000 bytes, more than the 10 allowed')
  assert.equal(refusal(`HTTP/1.1 200 OK\r\nContent-Length: ${'9'.repeat(5000)}\r\n\r\n`, cap), `the reply announces ${'9'.repeat(20)}... bytes, more than the 10 allowed`)
  assert.equal(refusal(`HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(11)}`, cap), 'the reply is larger than the 10 bytes allowed')
  assert.equal(refusal(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\naaaaa\r\n6\r\n`, cap), 'the reply is larger than the 10 bytes allowed')
  assert.equal(response(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n${'x'.repeat(10)}`, cap).body, 'x'.repeat(10))
  assert.equal(response(`HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(10)}`, cap).body, 'x'.repeat(10))
  assert.equal(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\naaaaa\r\n5\r\nbbbbb\r\n0\r\n\r\n', cap).body, 'aaaaabbbbb')
  assertSplitInvariant(`HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(11)}`, cap)
})

test('bytes after a complete body are ignored, and the response is returned as soon as it is whole', () => {
  const parser = new HttpResponseParser({ maxBodyBytes: 1024 })
  assert.equal(parser.push(bytes('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no')).kind, 'more')
  const progress = parser.push(bytes('kTRAILING JUNK'))
  assert.equal(progress.kind, 'complete')
  const first = (progress as Extract<Outcome, { kind: 'complete' }>).response
  assert.equal(text(first.body), 'ok')
  assert.equal((parser.push(bytes('\u0000 anything at all')) as Extract<Outcome, { kind: 'complete' }>).response, first)
  assert.equal((parser.end() as Extract<Outcome, { kind: 'complete' }>).response, first)
  assert.equal(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 500 Oops\r\n\r\n').body, 'ok')
})

test('a connection closed early is told apart from garbage, with what was missing', () => {
  assert.deepEqual(parse(''), { kind: 'closed-early', missing: 'status-line' })
  assert.deepEqual(parse('HTTP/1.1 20'), { kind: 'closed-early', missing: 'status-line' })
  assert.deepEqual(parse('HTTP/1.1 200 OK\r\nContent-Le'), { kind: 'closed-early', missing: 'field-section' })
  assert.deepEqual(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), { kind: 'closed-early', missing: 'body' })
  assert.deepEqual(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'), { kind: 'closed-early', missing: 'body' })
  assert.deepEqual(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab'), { kind: 'closed-early', missing: 'body' })
  assert.deepEqual(assertSplitInvariant('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), { kind: 'closed-early', missing: 'body' })
  const parser = new HttpResponseParser({ maxBodyBytes: 1024 })
  parser.end()
  assert.throws(() => parser.push(bytes('HTTP/1.1 200 OK\r\n')), UsageError)
})

test('the body is a copy of the bytes, not UTF-8 decoded or a view of what was pushed', () => {
  const reply = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n'), Buffer.from([0xc3, 0xa9, 0xff, 0x00])])
  const progress = new HttpResponseParser({ maxBodyBytes: 1024 }).push(reply)
  const body = (progress as Extract<Outcome, { kind: 'complete' }>).response.body
  assert.deepEqual(Array.from(body), [0xc3, 0xa9, 0xff, 0x00])
  reply.fill(0)
  assert.deepEqual(Array.from(body), [0xc3, 0xa9, 0xff, 0x00])
})

test('split at every byte boundary: replies with every kind of framing give the same outcome however they arrive', () => {
  const replies = [
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nServer: Router \u0001 fw\r\nX-F: a\r\n b\r\nX-F: c\r\nContent-Length: 14\r\n\r\n<root>é</root>junk',
    'HTTP/1.1 500 Internal Server Error\r\nTRANSFER-ENCODING: chunked\r\nContent-Length: 3\r\n\r\n4;ext="1"\r\nfail\r\n0010\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n',
    'HTTP/1.0 200 OK\nContent-Type: text/xml\n\n<root>\r\n</root>\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n'
  ]
  const kinds = replies.map((reply) => assertSplitInvariant(reply).kind)
  assert.deepEqual(kinds, ['complete', 'complete', 'complete', 'refused', 'refused'])
})
