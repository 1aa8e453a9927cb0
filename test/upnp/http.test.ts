import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { getEventListeners } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import fc from 'fast-check'
import { AbortError, ConnectionResetError, NoResponseError, RemoteProtocolError, TimeoutError, UsageError } from '../../src/errors.js'
import { MAX_HEADER_SECTION_BYTES, USER_AGENT, sendHttpRequest, type HttpRequestOptions, type HttpResponse } from '../../src/upnp/http.js'
import { FakeClock } from '../../src/testing/fake-clock.js'
import { HTTP_MAX_BODY, httpReplies, httpShapes } from '../../fuzz/targets.js'

/**
 * A raw TCP server on loopback, so each test controls the exact bytes of the reply (framing,
 * garbage, resets) and sees the exact bytes of the request.
 */
async function rawServer (ctx: TestContext, onRequest: (request: string, socket: Socket) => void, host = '127.0.0.1'): Promise<{ port: number, requests: string[], connections: number, closed: () => Promise<void> }> {
  const requests: string[] = []
  const closes: Array<Promise<void>> = []
  const open = new Set<Socket>()
  const server: Server = createServer((socket) => {
    let data = ''
    open.add(socket)
    closes.push(new Promise((resolve) => { socket.on('close', () => { open.delete(socket); resolve() }) }))
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1')
      const end = data.indexOf('\r\n\r\n')
      if (end === -1) return
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(data)?.[1] ?? 0)
      if (data.length < end + 4 + length) return
      requests.push(data)
      onRequest(data, socket)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  ctx.after(async () => {
    // A client that failed to close its end must fail its test, not hang the run.
    for (const socket of open) socket.destroy()
    await new Promise<void>((resolve) => {
      server.close(() => { resolve() })
    })
  })
  return {
    port: (server.address() as { port: number }).port,
    requests,
    get connections () { return closes.length },
    // Every connection the server accepted has closed: the client let none of them linger.
    closed: async () => { await Promise.all(closes) }
  }
}

const base = (port: number, extra: Partial<HttpRequestOptions> = {}): HttpRequestOptions =>
  ({ method: 'GET', url: `http://127.0.0.1:${port}/rootDesc.xml`, maxBytes: 1024, timeoutMs: 2000, ...extra })

/** What one exchange gave for a canned reply: the response, or the error's class and message. */
type Outcome = HttpResponse | { error: string, message: string }

/** A server that answers every request with `reply`, as latin1 bytes, then closes. */
async function replyServer (ctx: TestContext, reply: string | Uint8Array): Promise<{ port: number }> {
  return await rawServer(ctx, (_request, socket) => { socket.end(typeof reply === 'string' ? Buffer.from(reply, 'latin1') : reply) })
}

async function outcomeOf (pending: Promise<HttpResponse>): Promise<Outcome> {
  try {
    return await pending
  } catch (err) {
    return { error: (err as Error).constructor.name, message: (err as Error).message }
  }
}

async function exchange (ctx: TestContext, reply: string | Uint8Array, extra: Partial<HttpRequestOptions> = {}): Promise<Outcome> {
  const server = await replyServer(ctx, reply)
  return await outcomeOf(sendHttpRequest(base(server.port, extra)))
}

async function response (ctx: TestContext, reply: string, extra: Partial<HttpRequestOptions> = {}): Promise<HttpResponse> {
  const outcome = await exchange(ctx, reply, extra)
  assert.ok(!('error' in outcome), `${JSON.stringify(reply)}: ${JSON.stringify(outcome)}`)
  return outcome
}

async function refusal (ctx: TestContext, reply: string, extra: Partial<HttpRequestOptions> = {}): Promise<string> {
  const outcome = await exchange(ctx, reply, extra)
  assert.ok('error' in outcome && outcome.error === 'RemoteProtocolError', `${JSON.stringify(reply)}: ${JSON.stringify(outcome)}`)
  return outcome.message
}

// ---------------------------------------------------------------------------------------------
// The request

test('a Content-Length reply: status, headers, body, both ends of the connection', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')
  })
  const response = await sendHttpRequest(base(server.port))
  assert.equal(response.status, 200)
  assert.equal(response.body, 'hello')
  assert.equal(response.headers['content-type'], 'text/xml')
  assert.equal(response.localAddress, '127.0.0.1')
  assert.equal(response.remoteAddress, '127.0.0.1')
  const request = server.requests[0]!
  assert.match(request, /^GET \/rootDesc\.xml HTTP\/1\.1\r\n/)
  assert.match(request, /\r\nHost: 127\.0\.0\.1:\d+\r\n/)
  assert.match(request, /\r\nConnection: close\r\n/)
})

test('a GET is request-line, Host, User-Agent, Connection: close and a blank line, nothing else', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') })
  await sendHttpRequest(base(server.port, { url: `http://127.0.0.1:${server.port}/rootDesc.xml?x=1` }))
  assert.equal(server.requests[0], `GET /rootDesc.xml?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUser-Agent: ${USER_AGENT}\r\nConnection: close\r\n\r\n`)
  assert.match(USER_AGENT, /^Node\.js\/\d+\.\d+\.\d+ UPnP\/1\.1 natmapper$/)
})

test('a POST keeps the header names exactly as given and sends a Content-Length, never chunked (goupnp: some IGDs cannot read chunked requests)', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail')
  })
  const body = '<?xml version="1.0"?><x>é</x>'
  const response = await sendHttpRequest(base(server.port, {
    method: 'POST',
    url: `http://127.0.0.1:${server.port}/ctl/IPConn`,
    headers: { SOAPAction: '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"', 'Content-Type': 'text/xml; charset="utf-8"' },
    body
  }))
  assert.equal(response.status, 500, 'any status resolves: a SOAP fault comes with 500')
  assert.equal(response.body, 'fail')
  const request = server.requests[0]!
  assert.match(request, /\r\nSOAPAction: "urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"\r\n/)
  assert.match(request, /\r\nContent-Type: text\/xml; charset="utf-8"\r\n/)
  assert.match(request, new RegExp(`\\r\\nContent-Length: ${Buffer.byteLength(body)}\\r\\n`))
  assert.doesNotMatch(request, /Transfer-Encoding/i)
})

test('the request goes out exactly as built: request-line, Host, User-Agent, Connection, Content-Length, the caller\'s fields, the body', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') })
  await sendHttpRequest(base(server.port, {
    method: 'POST',
    url: `http://127.0.0.1:${server.port}/ctl/IPConn?a=1`,
    headers: { SOAPAction: '"urn:x#GetStatusInfo"' },
    body: 'é'
  }))
  assert.equal(server.requests[0], `POST /ctl/IPConn?a=1 HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUser-Agent: ${USER_AGENT}\r\n` +
    `Connection: close\r\nContent-Length: 2\r\nSOAPAction: "urn:x#GetStatusInfo"\r\n\r\n\u00c3\u00a9`)
})

test('field names go out in the case given, whatever it is (jupnp#120: a router served its login page for "Soapaction")', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') })
  for (const name of ['SOAPAction', 'SOAPACTION', 'soapaction', 'Soapaction']) {
    await sendHttpRequest(base(server.port, { method: 'POST', headers: { [name]: '"urn:x#A"' }, body: '' }))
  }
  assert.deepEqual(server.requests.map((r) => /\r\n(soapaction): /i.exec(r)?.[1]), ['SOAPAction', 'SOAPACTION', 'soapaction', 'Soapaction'])
})

test('a caller\'s Host or User-Agent replaces the default in place; field values go out as Latin-1', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') })
  await sendHttpRequest(base(server.port, { url: `http://127.0.0.1:${server.port}/`, headers: { 'user-agent': 'Other/1.0', HOST: '10.0.0.1:80', 'X-Name': 'café', 'X-Tab': 'a\tb\u00ff' } }))
  assert.equal(server.requests[0], 'GET / HTTP/1.1\r\nHOST: 10.0.0.1:80\r\nuser-agent: Other/1.0\r\nConnection: close\r\nX-Name: caf\u00e9\r\nX-Tab: a\tb\u00ff\r\n\r\n')
})

test('an IPv6 literal host: connected to, and written in brackets in Host', async (ctx) => {
  let server
  try {
    server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') }, '::1')
  } catch (err) {
    ctx.skip(`no IPv6 loopback here: ${(err as Error).message}`)
    return
  }
  const response = await sendHttpRequest(base(server.port, { url: `http://[::1]:${server.port}/d.xml` }))
  assert.deepEqual([response.body, response.localAddress, response.remoteAddress], ['ok', '::1', '::1'])
  assert.match(server.requests[0]!, new RegExp(`\\r\\nHost: \\[::1\\]:${server.port}\\r\\n`))
})

test('no request splitting: CR, LF or NUL in a field name or value, or a field the client frames, is a UsageError before any connection', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') })
  const attempts: Array<Record<string, string>> = [
    { SOAPAction: '"x"\r\nX-Injected: 1' }, { SOAPAction: 'x\nX-Injected: 1' }, { SOAPAction: 'x\rX' }, { SOAPAction: 'x\u0000' },
    { 'X-A\r\nX-B': 'v' }, { 'X-A\u0000': 'v' }, { 'X A': 'v' }, { 'X:A': 'v' }, { '': 'v' }, { 'X-A': 'snow\u2603man' }, { 'X-A': 'bell\u0007' },
    { Host: '10.0.0.1\r\nX-Injected: 1' }, { 'User-Agent': 'ua\n' },
    { 'Content-Length': '1' }, { 'transfer-encoding': 'chunked' }, { Connection: 'keep-alive' }, { SOAPAction: 'a', soapaction: 'b' }
  ]
  for (const headers of attempts) {
    await assert.rejects(sendHttpRequest(base(server.port, { method: 'POST', headers, body: 'abc' })), UsageError, JSON.stringify(headers))
  }
  await assert.rejects(sendHttpRequest(base(server.port, { headers: attempts[0] })), /Invalid character in header content \["SOAPAction"\]/)
  // One good request after them: its request is the only one the server ever saw.
  await sendHttpRequest(base(server.port))
  assert.equal(server.connections, 1)
  assert.equal(server.requests.length, 1)
})

test('only http: and IP-literal hosts, whatever the caller passes: no DNS, no TLS', async () => {
  for (const url of ['http://localhost:1/x', 'http://router.lan/x', 'https://127.0.0.1/x', 'ftp://127.0.0.1/x', 'http://127.0.0.1:0/x']) {
    await assert.rejects(sendHttpRequest({ method: 'GET', url, maxBytes: 1, timeoutMs: 1000 }), UsageError, url)
  }
})

// ---------------------------------------------------------------------------------------------
// The reply: framing

test('chunked bodies (BiPAC 7404VNOX always answers chunked) and close-delimited bodies', async (ctx) => {
  const chunked = await rawServer(ctx, (_request, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n')
    setImmediate(() => { socket.end('4\r\ndefg\r\n0\r\n\r\n') })
  })
  assert.equal((await sendHttpRequest(base(chunked.port))).body, 'abcdefg')
  const closeDelimited = await rawServer(ctx, (_request, socket) => {
    socket.write('HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\nfirst ')
    setImmediate(() => { socket.end('second') })
  })
  assert.equal((await sendHttpRequest(base(closeDelimited.port))).body, 'first second')
})

test('chunked bodies: extensions ignored, upper and lower hex, leading zeros, trailers not fields of the reply', async (ctx) => {
  const reply = await response(ctx, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;name=value\r\nabc\r\n00A\r\n0123456789\r\nf;x\r\nABCDEFGHIJKLMNO\r\n0\r\nX-Trailer: t\r\n\r\n')
  assert.equal(reply.body, 'abc0123456789ABCDEFGHIJKLMNO')
  assert.equal(reply.headers['x-trailer'], undefined)
  assert.equal((await response(ctx, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'0'.repeat(500)}2\r\nok\r\n0\r\n\r\n`)).body, 'ok')
  // chunked as the final coding; any other final coding reads until the connection closes.
  assert.equal((await response(ctx, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n')).body, 'ok')
  assert.equal((await response(ctx, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nok\r\n0\r\n\r\n')).body, '2\r\nok\r\n0\r\n\r\n')
})

test('a chunk-size must be hex and bounded, and its data followed by CRLF', async (ctx) => {
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
  for (const size of ['', 'g', '-1', '0x5', '1 2', '+5']) assert.match(await refusal(ctx, `${head}${size}\r\nabcde\r\n0\r\n\r\n`), /chunk size/i, size)
  assert.match(await refusal(ctx, `${head}fffffffffffffffff\r\n`), /Chunk size overflow/)
  assert.match(await refusal(ctx, `${head}2;${'x'.repeat(20_000)}\r\nok\r\n0\r\n\r\n`), /Chunk extensions overflow/)
  assert.match(await refusal(ctx, `${head}2\r\nokay\r\n0\r\n\r\n`), /after chunk data/)
})

test('a close-delimited body runs until the close; 204, 304 and a zero Content-Length have none', async (ctx) => {
  assert.equal((await response(ctx, 'HTTP/1.0 200 OK\r\n\r\n<root/>')).body, '<root/>')
  for (const head of ['HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n', 'HTTP/1.1 304 Not Modified\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']) {
    assert.equal((await response(ctx, `${head}hello`)).body, '', head)
  }
})

test('bytes after Content-Length are ignored', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokTRAILING JUNK')
  })
  assert.equal((await sendHttpRequest(base(server.port))).body, 'ok')
  assert.equal((await response(ctx, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 500 Oops\r\n\r\n')).body, 'ok')
})

test('a reply is taken as soon as it is whole: the router need not close the connection, and the client closes it', { timeout: 10_000 }, async (ctx) => {
  const clock = new FakeClock()
  const server = await rawServer(ctx, (_request, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') // and the connection stays open
  })
  const response = await sendHttpRequest(base(server.port, { clock, timeoutMs: 500 }))
  assert.equal(response.body, 'ok')
  assert.equal(clock.pendingTimers, 0, 'the time cap is cleared')
  await server.closed()
})

test('a reply delivered one byte at a time reads the same', async (ctx) => {
  const replies = [
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-F: a\r\nX-F: c\r\nContent-Length: 14\r\n\r\n<root>x</root>junk',
    'HTTP/1.1 500 Internal Server Error\r\nTRANSFER-ENCODING: chunked\r\n\r\n4;ext="1"\r\nfail\r\n0010\r\n0123456789abcdef\r\n0\r\nTrailer: x\r\n\r\n'
  ]
  for (const reply of replies) {
    const bytes = Buffer.from(reply, 'latin1')
    const whole = await response(ctx, reply)
    const server = await rawServer(ctx, (_request, socket) => {
      let i = 0
      const next = (): void => { if (i < bytes.length && !socket.destroyed) socket.write(bytes.subarray(i, ++i), next) }
      next()
    })
    const dripped = await sendHttpRequest(base(server.port))
    assert.deepEqual([dripped.status, dripped.headers, dripped.body], [whole.status, whole.headers, whole.body])
  }
})

// ---------------------------------------------------------------------------------------------
// The reply: status-line and fields

test('no redirects: a 3xx comes back as a status and its Location is not followed', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest\r\nContent-Length: 0\r\n\r\n')
  })
  const response = await sendHttpRequest(base(server.port))
  assert.equal(response.status, 302)
  assert.equal(server.requests.length, 1)
})

test('status-lines: HTTP/1.0 and 1.1, any code from 100, a reason or none; other versions are refused', async (ctx) => {
  assert.equal((await response(ctx, 'HTTP/1.0 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n')).status, 500)
  assert.equal((await response(ctx, 'HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n')).status, 404)
  assert.equal((await response(ctx, 'HTTP/1.1 200 \u00c9t\u00e9\r\nContent-Length: 0\r\n\r\n')).status, 200)
  assert.equal((await response(ctx, 'HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n')).status, 999)
  for (const reply of ['HTTP/2.0 200 OK\r\n\r\n', 'HTTP/0.9 200 OK\r\n\r\n', 'HTTP/1.1 099 Odd\r\n\r\n', 'HTTP/1.1 2000 OK\r\n\r\n', 'HTTP/1.1 abc\r\n\r\n', 'http/1.1 200 OK\r\n\r\n']) {
    await refusal(ctx, reply)
  }
})

test('what is not HTTP is a RemoteProtocolError', async (ctx) => {
  const garbage = await rawServer(ctx, (_request, socket) => { socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n') })
  await assert.rejects(sendHttpRequest(base(garbage.port)), RemoteProtocolError)
  assert.match(await refusal(ctx, '\u0016\u0003\u0001\u0000'), /HPE_INVALID_CONSTANT/, 'a TLS record')
  assert.match(await refusal(ctx, '<html>'), /HPE_INVALID_CONSTANT/)
})

test('interim 1xx replies are skipped, their fields with them, and bounded together', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.write('HTTP/1.1 100 Continue\r\n\r\n')
    setImmediate(() => { socket.end('HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 7\r\n\r\n<root/>') })
  })
  const response = await sendHttpRequest(base(server.port))
  assert.deepEqual([response.status, response.headers, response.body], [200, { 'content-type': 'text/xml', 'content-length': '7' }, '<root/>'])
  assert.match(await refusal(ctx, 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(1000)), /interim responses are larger than the 16384 bytes allowed/)
})

test('the body is UTF-8 decoded, invalid sequences as U+FFFD; names are lower case, repeated fields joined with ", ", __proto__ a field like any other', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end(Buffer.concat([
      Buffer.from('HTTP/1.1 200 OK\r\nX-Router: A\r\nx-router: B\r\nContent-Type: a\r\nCONTENT-TYPE: b\r\n__proto__: p\r\nX-Latin: caf\u00e9\r\nContent-Length: 5\r\n\r\n', 'latin1'),
      Buffer.from([0xc3, 0xa9, 0xff, 0x41, 0x42])
    ]))
  })
  const response = await sendHttpRequest(base(server.port))
  assert.equal(response.body, '\u00e9\ufffdAB')
  assert.equal(response.headers['x-router'], 'A, B')
  assert.equal(response.headers['content-type'], 'a, b', 'joined, where node:http would keep the first')
  assert.equal(response.headers['x-latin'], 'caf\u00e9', 'Latin-1, byte for byte')
  assert.equal(Object.getOwnPropertyDescriptor(response.headers, '__proto__')?.value, 'p')
  assert.equal(Object.getPrototypeOf(response.headers), Object.prototype)
  assert.ok(response.durationMs >= 0)
})

test('the header section is bounded at 16 KiB of names and values (node:http\'s count), trailers too', async (ctx) => {
  const head = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n'
  assert.equal(MAX_HEADER_SECTION_BYTES, 16384)
  assert.equal((await response(ctx, `${head}X: ${'a'.repeat(MAX_HEADER_SECTION_BYTES - 1000)}\r\n\r\n`)).status, 200)
  assert.match(await refusal(ctx, `${head}X: ${'a'.repeat(MAX_HEADER_SECTION_BYTES)}\r\n\r\n`), /header section is larger than the 16384 bytes allowed/)
  assert.match(await refusal(ctx, `HTTP/1.1 200 OK\r\n${'X-Junk: yes\r\n'.repeat(2000)}`), /larger than the 16384 bytes/)
  assert.match(await refusal(ctx, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n${'X-T: y\r\n'.repeat(5000)}\r\n`), /larger than the 16384 bytes/)
})

/**
 * The hand-written parser this client once had read these; node:http's strict parser refuses
 * them, and no router on record sends them (shared/reference/router-quirks-and-anchors.md), so
 * they are a clean RemoteProtocolError rather than a reason for its lenient mode.
 */
test('sloppy replies the strict parser refuses are a clean RemoteProtocolError: LF-only line ends, obs-fold, control bytes, repeated Content-Length', async (ctx) => {
  const refused: Record<string, string> = {
    'LF-only line ends': 'HTTP/1.1 200 OK\nContent-Type: text/xml\nContent-Length: 7\n\n<root/>',
    'LF-only chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n',
    'obs-fold': 'HTTP/1.1 200 OK\r\nX-Folded: one\r\n two\r\nContent-Length: 2\r\n\r\nok',
    'a control byte in a value': 'HTTP/1.1 200 OK\r\nServer: Router \u0001 firmware\r\nContent-Length: 2\r\n\r\nok',
    'a NUL in a value': 'HTTP/1.1 200 OK\r\nServer: R\u0000\r\nContent-Length: 2\r\n\r\nok',
    'a bare CR in a value': 'HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\nContent-Length: 2\r\n\r\nok',
    'a space in a name': 'HTTP/1.1 200 OK\r\nX Spaced: s\r\nContent-Length: 2\r\n\r\nok',
    'a space before the colon': 'HTTP/1.1 200 OK\r\nServer : miniupnpd\r\nContent-Length: 2\r\n\r\nok',
    'a field line without a colon': 'HTTP/1.1 200 OK\r\nnot a field\r\n\r\n',
    'a repeated identical Content-Length': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok',
    'a Content-Length list': 'HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok',
    'conflicting Content-Lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk',
    'a Content-Length that is not digits': 'HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok',
    'chunked and Content-Length': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    'identity and Content-Length': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nok',
    'whitespace after a chunk-size': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n',
    'two spaces in the status-line': 'HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n'
  }
  for (const [name, reply] of Object.entries(refused)) {
    const outcome = await exchange(ctx, reply)
    assert.ok('error' in outcome && outcome.error === 'RemoteProtocolError' && /HPE_/.test(outcome.message), `${name}: ${JSON.stringify(outcome)}`)
  }
  // Still read: whitespace around a value, obs-text in it, empty lines before the status-line.
  assert.deepEqual((await response(ctx, '\r\nHTTP/1.1 200 OK\r\nServer:  miniupnpd \r\nX-Latin: \u00ff\r\nContent-Length:  2 \r\n\r\nok')).headers,
    { server: 'miniupnpd', 'x-latin': '\u00ff', 'content-length': '2' })
})

test('a process started with --insecure-http-parser still gets the strict parser', async (ctx) => {
  const server = await replyServer(ctx, 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok')
  const module = new URL('../../src/upnp/http.js', import.meta.url).href
  const script = `
    const { sendHttpRequest } = await import(${JSON.stringify(module)})
    try {
      await sendHttpRequest({ method: 'GET', url: 'http://127.0.0.1:${server.port}/', maxBytes: 100, timeoutMs: 2000 })
      console.log('read')
    } catch (err) { console.log(err.constructor.name) }
  `
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--insecure-http-parser', '--input-type=module', '-e', script], (err, out) => { if (err === null) resolve(out); else reject(err) })
  })
  assert.equal(stdout.trim(), 'RemoteProtocolError')
})

// ---------------------------------------------------------------------------------------------
// Caps and endings

test('the byte cap: announced too large, or growing too large, is a RemoteProtocolError; exactly at the cap is fine', async (ctx) => {
  const announced = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n')
  })
  await assert.rejects(sendHttpRequest(base(announced.port)), (err: unknown) => err instanceof RemoteProtocolError && /100000 bytes, more than the 1024/.test(err.message))
  const streamed = await rawServer(ctx, (_request, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
    socket.write(`800\r\n${'x'.repeat(0x800)}\r\n`)
    socket.on('close', () => {})
  })
  await assert.rejects(sendHttpRequest(base(streamed.port)), (err: unknown) => err instanceof RemoteProtocolError && /larger than the 1024 bytes/.test(err.message))
  assert.match(await refusal(ctx, 'HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n', { maxBytes: 10 }), /announces 10000000000 bytes, more than the 10 allowed/)
  assert.match(await refusal(ctx, `HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(11)}`, { maxBytes: 10 }), /larger than the 10 bytes allowed/)
  assert.equal((await response(ctx, `HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n${'x'.repeat(10)}`, { maxBytes: 10 })).body, 'x'.repeat(10))
  assert.equal((await response(ctx, `HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(10)}`, { maxBytes: 10 })).body, 'x'.repeat(10))
  assert.equal((await response(ctx, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\naaaaa\r\n5\r\nbbbbb\r\n0\r\n\r\n', { maxBytes: 10 })).body, 'aaaaabbbbb')
})

test('the time cap runs on the injected clock, for the whole exchange', async (ctx) => {
  const clock = new FakeClock()
  const server = await rawServer(ctx, (_request, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc') // and never the rest
  })
  const pending = sendHttpRequest(base(server.port, { clock, timeoutMs: 500 }))
  const outcome = pending.then(() => 'resolved', (err: Error) => err)
  while (server.requests.length === 0) await new Promise((resolve) => setImmediate(resolve))
  await clock.advance(499)
  assert.equal(await Promise.race([outcome, 'pending']), 'pending')
  await clock.advance(1)
  const err = await outcome
  assert.ok(err instanceof TimeoutError, String(err))
  assert.match(err.message, /no complete answer within 500 ms/)
})

test('an AbortSignal ends the exchange with AbortError', async (ctx) => {
  const server = await rawServer(ctx, () => {})
  const controller = new AbortController()
  const pending = sendHttpRequest(base(server.port, { signal: controller.signal }))
  while (server.requests.length === 0) await new Promise((resolve) => setImmediate(resolve))
  controller.abort()
  await assert.rejects(pending, AbortError)
  await assert.rejects(sendHttpRequest(base(server.port, { signal: AbortSignal.abort() })), AbortError)
})

test('nothing listening is a NoResponseError; a reset or an early close is a ConnectionResetError', async (ctx) => {
  const gone = createServer()
  await new Promise<void>((resolve) => { gone.listen(0, '127.0.0.1', resolve) })
  const freePort = (gone.address() as { port: number }).port
  await new Promise<void>((resolve) => { gone.close(() => { resolve() }) })
  await assert.rejects(sendHttpRequest(base(freePort)), (err: unknown) => err instanceof NoResponseError && /connection refused/.test(err.message))

  const reset = await rawServer(ctx, (_request, socket) => { socket.resetAndDestroy() })
  await assert.rejects(sendHttpRequest(base(reset.port)), (err: unknown) => err instanceof ConnectionResetError && /reset the connection/.test(err.message))
  const early = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc') })
  await assert.rejects(sendHttpRequest(base(early.port)), (err: unknown) => err instanceof ConnectionResetError && /in the middle of the reply$/.test(err.message))
  const silentClose = await rawServer(ctx, (_request, socket) => { socket.end() })
  await assert.rejects(sendHttpRequest(base(silentClose.port)), (err: unknown) => err instanceof ConnectionResetError && /closed without a reply/.test(err.message))
  // The last chunk and no end of the trailer section: node:http cannot tell it from a chunk cut short.
  const lastChunk = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n') })
  await assert.rejects(sendHttpRequest(base(lastChunk.port)), ConnectionResetError)
})

test('a connection closed in the middle of the header section is a ConnectionResetError that says so', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Ty') })
  await assert.rejects(sendHttpRequest(base(server.port)), (err: unknown) => err instanceof ConnectionResetError && /header section/.test(err.message))
})

test('every ending cleans up: the time cap cleared, the abort listener removed, the connection closed', { timeout: 10_000 }, async (ctx) => {
  const endings: Record<string, { reply: (socket: Socket) => void, error?: new (...args: never[]) => Error, abort?: boolean, timeout?: boolean }> = {
    'a whole reply': { reply: (socket) => { socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') } },
    'a close-delimited reply': { reply: (socket) => { socket.end('HTTP/1.0 200 OK\r\n\r\nok') } },
    'junk after a whole reply': { reply: (socket) => { socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK') } },
    'not HTTP': { reply: (socket) => { socket.write('SSH-2.0-OpenSSH_9.2\r\n') }, error: RemoteProtocolError },
    'too large': { reply: (socket) => { socket.write(`HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(2000)}`) }, error: RemoteProtocolError },
    'a reset': { reply: (socket) => { socket.resetAndDestroy() }, error: ConnectionResetError },
    'an early close': { reply: (socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc') }, error: ConnectionResetError },
    'an abort': { reply: () => {}, error: AbortError, abort: true },
    'the time cap': { reply: () => {}, error: TimeoutError, timeout: true }
  }
  for (const [name, ending] of Object.entries(endings)) {
    const clock = new FakeClock()
    const controller = new AbortController()
    const server = await rawServer(ctx, (_request, socket) => { ending.reply(socket) })
    // Settled into a value at once: a rejection while the clock advances is not an unhandled one.
    const outcome = sendHttpRequest(base(server.port, { clock, timeoutMs: 500, signal: controller.signal })).then(() => undefined, (err: unknown) => err)
    if (ending.abort === true || ending.timeout === true) {
      while (server.requests.length === 0) await new Promise((resolve) => setImmediate(resolve))
      if (ending.abort === true) controller.abort()
      else await clock.advance(500)
    }
    const err = await outcome
    if (ending.error === undefined) assert.equal(err, undefined, name)
    else assert.ok(err instanceof ending.error, `${name}: ${String(err)}`)
    assert.equal(clock.pendingTimers, 0, `${name}: the time cap is cleared`)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, `${name}: the abort listener is removed`)
    await server.closed()
  }
  // Nothing listening: no connection to close, the rest is cleaned up all the same.
  const clock = new FakeClock()
  const controller = new AbortController()
  const gone = createServer()
  await new Promise<void>((resolve) => { gone.listen(0, '127.0.0.1', resolve) })
  const freePort = (gone.address() as { port: number }).port
  await new Promise<void>((resolve) => { gone.close(() => { resolve() }) })
  await assert.rejects(sendHttpRequest(base(freePort, { clock, signal: controller.signal })), NoResponseError)
  assert.equal(clock.pendingTimers, 0)
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
})

// ---------------------------------------------------------------------------------------------
// Hostile replies (the generators of fuzz/targets.ts, over loopback)

const DOCUMENTED = [RemoteProtocolError, ConnectionResetError]

test('any reply bytes give a response or a RemoteProtocolError or ConnectionResetError, never a hang', { timeout: 60_000 }, async (ctx) => {
  let current: Uint8Array = new Uint8Array(0)
  const server = await rawServer(ctx, (_request, socket) => { socket.end(current) })
  const seen = { resolved: 0, refused: 0 }
  await fc.assert(fc.asyncProperty(httpReplies, async (reply) => {
    current = reply
    try {
      const response = await sendHttpRequest(base(server.port, { maxBytes: HTTP_MAX_BODY, timeoutMs: 2000 }))
      assert.ok(response.status >= 100 && response.status <= 999, `status ${response.status}`)
      assert.ok(Buffer.byteLength(response.body) <= 3 * reply.length, 'a body no larger than the reply (U+FFFD is 3 bytes)')
      for (const name of Object.keys(response.headers)) assert.equal(name, name.toLowerCase())
      seen.resolved++
    } catch (err) {
      assert.ok(DOCUMENTED.some((c) => err instanceof c), String(err))
      seen.refused++
    }
  }), { numRuns: 300 })
  ctx.diagnostic(`resolved ${seen.resolved}, refused ${seen.refused}`)
  assert.ok(seen.resolved > 10 && seen.refused > 10, JSON.stringify(seen))
})

test('worst-case replies of 1 MiB are read or refused within a second each', { timeout: 60_000 }, async (ctx) => {
  let current: Uint8Array = new Uint8Array(0)
  const server = await rawServer(ctx, (_request, socket) => { socket.end(current) })
  const slow: string[] = []
  for (const shape of httpShapes) {
    current = shape.build(1024 * 1024)
    const started = performance.now()
    const outcome = await outcomeOf(sendHttpRequest(base(server.port, { maxBytes: HTTP_MAX_BODY, timeoutMs: 5000 })))
    const ms = performance.now() - started
    if ('error' in outcome) assert.ok(['RemoteProtocolError', 'ConnectionResetError'].includes(outcome.error), `${shape.name}: ${outcome.message}`)
    if (ms > 1000) slow.push(`${shape.name}: ${ms.toFixed(0)} ms`)
  }
  assert.deepEqual(slow, [])
})
