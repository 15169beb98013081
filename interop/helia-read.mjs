// Read an rlp2p log with a plain Helia node and standard IPFS parts only (docs/ipfs.md):
//   1. resolve the log's name through the DHT (@helia/ipns: the standard /ipns/<multihash> key),
//   2. fetch the head page by its CID over Bitswap,
//   3. decode it as vac.remotelog.RemoteLog from ../proto/ (protobufjs),
//   4. fetch each message block a pair references (embedded messages are in the page already),
//   5. follow `tail` to the next page, until there is none.
//
// Usage: node --import ./polyfill.mjs helia-read.mjs --peer <multiaddr/p2p/..> --name <log name>
//        [--timeout-ms 30000] [--pin]
// Prints one JSON line: {"ok": true, "head", "sequence", "pages", "blocks", "messages": [{"seq",
// "data_b64"}] (oldest first), "resolve_ms", "fetch_ms"}, or {"ok": false, "error"} and exits 1.
// With --pin it then stays up serving what it fetched over Bitswap (and provides the blocks in
// the DHT), prints {"serving": <multiaddr>}, and stops at end of stdin.
//
// No rlp2p code: the page is decoded with the .proto files alone, and each block is checked by
// Helia against its CID.

import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { ipns } from '@helia/ipns'
import { withLibp2pLight } from '@helia/libp2p'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeliaLight } from 'helia'
import { marshalIPNSRecord, multihashToIPNSRoutingKey } from 'ipns'
import { ipnsSelector } from 'ipns/selector'
import { ipnsValidator } from 'ipns/validator'
import { CID } from 'multiformats/cid'
import { pb } from './rlp2p-wire.mjs'

const { values: opts } = parseArgs({
  options: {
    peer: { type: 'string', multiple: true, default: [] },
    name: { type: 'string' },
    'timeout-ms': { type: 'string', default: '30000' },
    pin: { type: 'boolean', default: false }
  },
  strict: true
})

// bounds on what a hostile log can make us do
const MAX_PAGES = 100_000
const MAX_MESSAGES = 1_000_000
const PARALLEL = 256

function toB64 (bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

async function drain (events) {
  for await (const _ of events) { /* the events of a DHT query */ }
}

// resolves once written: process.exit() right after a write to a pipe would cut a long line
function out (object) {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(object) + '\n', resolve))
}

async function getBlock (helia, cid, signal) {
  const chunks = []
  for await (const chunk of helia.blockstore.get(cid, { signal })) {
    chunks.push(chunk)
  }
  return chunks.length === 1 ? chunks[0] : new Uint8Array(Buffer.concat(chunks))
}

async function main () {
  if (opts.name == null || opts.peer.length === 0) {
    throw new Error('--name and --peer are required')
  }
  const signal = AbortSignal.timeout(Number(opts['timeout-ms']))
  const helia = withBitswap(withLibp2pLight(createHeliaLight({}), {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        clientMode: !opts.pin,
        peerInfoMapper: passthroughMapper, // loopback peers stay in the routing table
        initialQuerySelfInterval: 0,
        validators: { ipns: ipnsValidator },
        selectors: { ipns: ipnsSelector }
      })
    }
  }))
  await helia.start()
  try {
    for (const peer of opts.peer) {
      await helia.libp2p.dial(multiaddr(peer), { signal })
    }
    // the DHT adds a peer once identify said it serves kad
    while (helia.libp2p.services.dht.routingTable.size === 0) {
      signal.throwIfAborted()
      await new Promise(resolve => setTimeout(resolve, 10))
    }

    const started = performance.now()
    const name = ipns(helia)
    let resolved = null
    for await (const result of name.resolve(peerIdFromString(opts.name).toMultihash(), { signal })) {
      resolved = result
    }
    if (resolved == null) {
      throw new Error(`${opts.name} did not resolve`)
    }
    // the value from the record's signed V2 data (a compact record has no V1 value field)
    const value = resolved.value ?? new TextDecoder().decode(resolved.record.value)
    if (!value.startsWith('/ipfs/')) {
      throw new Error(`not an /ipfs/ value: ${value}`)
    }
    const head = CID.parse(value.slice('/ipfs/'.length))
    const resolvedAt = performance.now()

    const messages = []
    let pages = 0
    let blocks = 0
    let address = head
    while (address != null) {
      if (++pages > MAX_PAGES) throw new Error(`over ${MAX_PAGES} pages`)
      const page = pb.RemoteLog.decode(await getBlock(helia, address, signal))
      blocks++
      const pairs = page.pair
      if (messages.length + pairs.length > MAX_MESSAGES) throw new Error(`over ${MAX_MESSAGES} messages`)
      const datas = new Array(pairs.length)
      for (let start = 0; start < pairs.length; start += PARALLEL) {
        await Promise.all(pairs.slice(start, start + PARALLEL).map(async (pair, i) => {
          if (pair.data != null && pair.data.length > 0) {
            datas[start + i] = pair.data
          } else {
            datas[start + i] = await getBlock(helia, CID.decode(pair.remoteHash), signal)
            blocks++
          }
        }))
      }
      pairs.forEach((pair, i) => messages.push({ seq: Number(pair.seq), data_b64: toB64(datas[i]) }))
      address = page.tail != null && page.tail.length > 0 ? CID.decode(page.tail) : null
    }
    messages.sort((a, b) => a.seq - b.seq)
    await out({
      ok: true,
      head: head.toString(),
      sequence: Number(resolved.record.sequence),
      pages,
      blocks,
      messages,
      resolve_ms: resolvedAt - started,
      fetch_ms: performance.now() - resolvedAt
    })

    if (opts.pin) {
      // keep the log available as a pinning service would: the blocks stay in the blockstore
      // (answered over Bitswap), the head is provided and the record put back into the DHT (a
      // DHT server keeps both itself, whether or not other servers are reachable)
      const pinSignal = AbortSignal.timeout(Number(opts['timeout-ms']))
      const dht = helia.libp2p.services.dht
      const key = multihashToIPNSRoutingKey(peerIdFromString(opts.name).toMultihash())
      for (const [what, job] of [
        ['provide', () => helia.routing.provide(head, { signal: pinSignal })],
        ['put', () => drain(dht.put(key, marshalIPNSRecord(resolved.record), { signal: pinSignal }))]
      ]) {
        try {
          await job()
        } catch (err) {
          console.error(`[helia-read] ${what}: ${err.message}`)
        }
      }
      await out({ serving: helia.libp2p.getMultiaddrs()[0].toString() })
      for await (const _ of process.stdin) { /* until the test closes stdin */ }
    }
  } finally {
    await helia.stop()
  }
}

main().then(() => process.exit(0), async (err) => {
  await out({ ok: false, error: `${err.name}: ${err.message}` })
  process.exit(1)
})
