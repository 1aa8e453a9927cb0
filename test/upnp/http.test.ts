import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { getEventListeners } from 'node:events'
import { createServer, type Server, type Socket } from 'node:net'
import { AbortError, NoResponseError, RemoteProtocolError, TimeoutError, UsageError } from '../../src/errors.js'
import { ConnectionResetError, preloadHttp, sendHttpRequest, type HttpRequestOptions } from '../../src/upnp/http.js'
import { USER_AGENT } from '../../src/upnp/http-codec.js'
import { FakeClock } from '../../src/testing/fake-clock.js'

/**
 * A raw TCP server on loopback, so each test controls the exact bytes of the reply (framing,
 * garbage, resets) and sees the exact bytes of the request.
 */
async function rawServer (ctx: TestContext, onRequest: (request: string, socket: Socket) => void): Promise<{ port: number, requests: string[], connections: number, closed: () => Promise<void> }> {
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
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
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

test('no redirects: a 3xx comes back as a status and its Location is not followed', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest\r\nContent-Length: 0\r\n\r\n')
  })
  const response = await sendHttpRequest(base(server.port))
  assert.equal(response.status, 302)
  assert.equal(server.requests.length, 1)
})

test('the byte cap: announced too large, or growing too large, is a RemoteProtocolError', async (ctx) => {
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
  const closed = await rawServer(ctx, () => {})
  const port = closed.port
  await new Promise<void>((resolve) => { setImmediate(resolve) })
  const gone = createServer()
  await new Promise<void>((resolve) => { gone.listen(0, '127.0.0.1', resolve) })
  const freePort = (gone.address() as { port: number }).port
  await new Promise<void>((resolve) => { gone.close(() => { resolve() }) })
  await assert.rejects(sendHttpRequest(base(freePort)), (err: unknown) => err instanceof NoResponseError && /connection refused/.test(err.message))

  const reset = await rawServer(ctx, (_request, socket) => { socket.resetAndDestroy() })
  await assert.rejects(sendHttpRequest(base(reset.port)), ConnectionResetError)
  const early = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc') })
  await assert.rejects(sendHttpRequest(base(early.port)), ConnectionResetError)
  const silentClose = await rawServer(ctx, (_request, socket) => { socket.end() })
  await assert.rejects(sendHttpRequest(base(silentClose.port)), ConnectionResetError)
  assert.ok(port > 0)
})

test('what is not HTTP is a RemoteProtocolError; sloppy but readable headers are read', async (ctx) => {
  const garbage = await rawServer(ctx, (_request, socket) => { socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n') })
  await assert.rejects(sendHttpRequest(base(garbage.port)), RemoteProtocolError)
  const sloppy = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nServer: Router \x01 firmware\r\nContent-Length: 2\r\n\r\nok')
  })
  assert.equal((await sendHttpRequest(base(sloppy.port))).body, 'ok')
})

test('bytes after Content-Length are ignored', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokTRAILING JUNK')
  })
  assert.equal((await sendHttpRequest(base(server.port))).body, 'ok')
})

test('only http: and IP-literal hosts, whatever the caller passes: no DNS, no TLS', async () => {
  for (const url of ['http://localhost:1/x', 'http://router.lan/x', 'https://127.0.0.1/x', 'ftp://127.0.0.1/x']) {
    await assert.rejects(sendHttpRequest({ method: 'GET', url, maxBytes: 1, timeoutMs: 1000 }), UsageError, url)
  }
})

test('the request goes out exactly as encoded: request-line, Host, User-Agent, Connection, Content-Length, the caller\'s fields, the body', async (ctx) => {
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

test('a header that would split the request is refused before any connection is made', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n') })
  await assert.rejects(sendHttpRequest(base(server.port, { headers: { SOAPAction: '"x"\r\nX-Injected: 1' } })), UsageError)
  await new Promise<void>((resolve) => { setTimeout(resolve, 20) })
  assert.equal(server.connections, 0)
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

test('interim 100 Continue replies and LF-only line ends, over a real connection', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.write('HTTP/1.1 100 Continue\r\n\r\n')
    setImmediate(() => { socket.end('HTTP/1.1 200 OK\nContent-Type: text/xml\nContent-Length: 7\n\n<root/>') })
  })
  const response = await sendHttpRequest(base(server.port))
  assert.deepEqual([response.status, response.headers['content-type'], response.body], [200, 'text/xml', '<root/>'])
})

test('the body is UTF-8 decoded, invalid sequences as U+FFFD; the header fields are lower case', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => {
    socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-Router: A\r\nx-router: B\r\nContent-Length: 5\r\n\r\n'), Buffer.from([0xc3, 0xa9, 0xff, 0x41, 0x42])]))
  })
  const response = await sendHttpRequest(base(server.port))
  assert.equal(response.body, '\u00e9\ufffdAB')
  assert.equal(response.headers['x-router'], 'A, B')
  assert.ok(response.durationMs >= 0)
})

test('a connection closed in the middle of the header section is a ConnectionResetError that says so', async (ctx) => {
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Ty') })
  await assert.rejects(sendHttpRequest(base(server.port)), (err: unknown) => err instanceof ConnectionResetError && /header section/.test(err.message))
})

test('every ending cleans up: the time cap cleared, the abort listener removed, the connection closed', { timeout: 10_000 }, async (ctx) => {
  const endings: Record<string, { reply: (socket: Socket) => void, error?: new (...args: never[]) => Error, abort?: boolean, timeout?: boolean }> = {
    'a whole reply': { reply: (socket) => { socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') } },
    'a close-delimited reply': { reply: (socket) => { socket.end('HTTP/1.0 200 OK\r\n\r\nok') } },
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

test('a process that speaks UPnP HTTP never loads node:http', async () => {
  const module = new URL('../../src/upnp/http.js', import.meta.url).href
  const script = `
    import { createServer } from 'node:net'
    const { sendHttpRequest } = await import(${JSON.stringify(module)})
    const server = createServer((socket) => { socket.on('data', () => { socket.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok') }) })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    const response = await sendHttpRequest({ method: 'GET', url: 'http://127.0.0.1:' + server.address().port + '/', maxBytes: 100, timeoutMs: 2000 })
    server.close()
    console.log(JSON.stringify({ body: response.body, loaded: process.moduleLoadList.filter((m) => /^NativeModule (_http_|http$|net$)/.test(m)) }))
  `
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], (err, out) => { if (err === null) resolve(out); else reject(err) })
  })
  const { body, loaded } = JSON.parse(stdout) as { body: string, loaded: string[] }
  assert.equal(body, 'ok')
  assert.deepEqual(loaded, ['NativeModule net'], 'node:net and nothing of node:http')
})

test('preloadHttp only warms up: no connection, no handle left open, and any number of calls', async (ctx) => {
  const sockets = (): number => process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP')).length
  const before = sockets()
  preloadHttp()
  preloadHttp()
  await new Promise<void>((resolve) => { setImmediate(resolve) })
  assert.equal(sockets(), before)
  const server = await rawServer(ctx, (_request, socket) => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok') })
  assert.equal((await sendHttpRequest(base(server.port))).body, 'ok')
})
