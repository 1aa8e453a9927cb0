import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { AbortError, NoResponseError, RemoteProtocolError, TimeoutError, UsageError } from '../../src/errors.js'
import { ConnectionResetError, sendHttpRequest, type HttpRequestOptions } from '../../src/upnp/http.js'
import { FakeClock } from '../../src/testing/fake-clock.js'

/**
 * A raw TCP server on loopback, so each test controls the exact bytes of the reply (framing,
 * garbage, resets) and sees the exact bytes of the request.
 */
async function rawServer (ctx: TestContext, onRequest: (request: string, socket: Socket) => void): Promise<{ port: number, requests: string[] }> {
  const requests: string[] = []
  const server: Server = createServer((socket) => {
    let data = ''
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
    await new Promise<void>((resolve) => {
      server.close(() => { resolve() })
    })
  })
  return { port: (server.address() as { port: number }).port, requests }
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
