// The README's "Testing your own application" example, as written there (imports adjusted to
// the sources), so the README cannot drift from what the code does.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { FakeClock, SimulatedPmpGateway } from '../src/testing/index.js'
import { NAT, PcpClient } from '../src/index.js'

test('README: the natmapper/testing example gives the numbers it shows', async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  assert.match(readme, /await clock\.advance\(4500_000\)\s+\/\/ one renewal/)
  assert.match(readme, /console\.log\(router\.requestCount\)\s+\/\/ 2/)

  const clock = new FakeClock()
  const router = await SimulatedPmpGateway.start({ clock })
  const nat = new NAT(new PcpClient({ gateway: router.address, port: router.port, clock }), { clock })
  await nat.addMapping('udp', 4001)
  await clock.advance(4500_000)
  assert.equal(router.requestCount, 2)
  await nat.close()
  await router.close()
})
