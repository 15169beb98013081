// A js-libp2p peer for rlp2p's interop tests, driven over stdin/stdout.
//
//   node --import ./polyfill.mjs node.mjs [--timeout-ms N] [--ns NAME]... [--echo-protocol P] [--storage]
//
// It listens on /ip4/127.0.0.1/tcp/0 only (TCP + noise + yamux, identify, ping, kad-dht as a
// server), prints one JSON line {"ready": true, "peerId": ..., "addrs": [...]} on stdout, then
// reads one JSON command a line from stdin, {"id": n, "cmd": "...", ...}, and answers each with
// one JSON line {"id": n, "ok": true, ...} or {"id": n, "ok": false, "error": "..."}. Commands
// run concurrently; answers may come in any order, matched by id. Every command has a timeout
// (--timeout-ms, or "timeout_ms" in the command). Logs go to stderr only. It stops when stdin
// closes, on SIGTERM / SIGINT, or on the "stop" command. README.md lists the commands.
//
// It also speaks rlp2p's protocols as a second implementation, from ../proto/ only: IPNS record
// commands (js `ipns`), a reader of remote logs over /vac/cas/1.0.0 and /vac/ns/1.0.0
// (rlp2p-client.mjs), and with --storage a storage peer serving both (rlp2p-storage.mjs).
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { gossipsub, TopicValidatorResult } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import protobuf from 'protobufjs'
import { createIPNSRecord, createIPNSRecordWithExpiration, marshalIPNSRecord, unmarshalIPNSRecord } from 'ipns'
import { ipnsSelector } from 'ipns/selector'
import { ipnsValidator, validate as ipnsValidate } from 'ipns/validator'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { syncLog } from './rlp2p-client.mjs'
import { MemoryStore, casHandler, nsHandler } from './rlp2p-storage.mjs'
import { CAS_PROTOCOL, NS_PROTOCOL, describeRecord, parseHeadValue, routingKeyOf } from './rlp2p-wire.mjs'

const { values: opts } = parseArgs({
  options: {
    'timeout-ms': { type: 'string', default: '20000' },
    // extra DHT namespaces whose records are accepted as they are (the first record is kept)
    ns: { type: 'string', multiple: true, default: [] },
    'echo-protocol': { type: 'string', default: '/rlp2p/echo/1.0.0' },
    'max-frame': { type: 'string', default: String(4 * 1024 * 1024) },
    // serve /vac/cas/1.0.0 and /vac/ns/1.0.0 from memory, and announce the logs it holds
    storage: { type: 'boolean', default: false }
  },
  strict: true
})

const DEFAULT_TIMEOUT_MS = positiveInt(opts['timeout-ms'], 'timeout-ms')
const MAX_FRAME = positiveInt(opts['max-frame'], 'max-frame')
const ECHO_PROTOCOL = opts['echo-protocol']
// bounds on what one command or one echo stream may do
const MAX_ECHO_FRAMES = 10_000
const ECHO_IDLE_MS = 30_000
const MAX_RESULTS = 1000
const STOP_TIMEOUT_MS = 5000

function positiveInt (text, name) {
  const n = Number(text)
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`--${name} must be a positive integer, not ${text}`)
  }
  return n
}

function log (...args) {
  console.error('[js-node]', ...args)
}

function toB64 (bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

function fromB64 (text, name) {
  if (typeof text !== 'string') {
    throw new Error(`"${name}" must be a base64 string`)
  }
  return new Uint8Array(Buffer.from(text, 'base64'))
}

function requireString (cmd, name) {
  const v = cmd[name]
  if (typeof v !== 'string' || v.length === 0) {
    throw new Error(`"${name}" must be a non-empty string`)
  }
  return v
}

// a multiaddr ("/ip4/...") or a peer id
function parseTarget (text) {
  return text.startsWith('/') ? multiaddr(text) : peerIdFromString(text)
}

// the peer id of a peer id, or the last /p2p/ component of a multiaddr
function peerIdOf (target) {
  if (typeof target.getComponents !== 'function') return target
  const p2p = target.getComponents().filter(c => c.name === 'p2p')
  if (p2p.length === 0 || p2p[p2p.length - 1].value == null) {
    throw new Error(`multiaddr ${target} has no /p2p/ peer id`)
  }
  return peerIdFromString(p2p[p2p.length - 1].value)
}

function errorText (err) {
  if (err == null) return 'unknown error'
  const name = err.name ?? 'Error'
  return `${name}: ${err.message ?? String(err)}`
}

// ---- the echo protocol: unsigned-varint length-prefixed frames, each sent back as it came ----

async function handleEcho (stream) {
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
  try {
    for (let i = 0; i < MAX_ECHO_FRAMES; i++) {
      let frame
      try {
        frame = await lp.read({ signal: AbortSignal.timeout(ECHO_IDLE_MS) })
      } catch (err) {
        if (err.name === 'UnexpectedEOFError') break // the remote closed its side
        throw err
      }
      await lp.write(frame, { signal: AbortSignal.timeout(ECHO_IDLE_MS) })
    }
    await stream.close({ signal: AbortSignal.timeout(ECHO_IDLE_MS) })
  } catch (err) {
    log('echo stream failed:', errorText(err))
    stream.abort(err)
  }
}

// ---- the node ----

const permissive = Object.fromEntries(opts.ns.map(ns => [ns, async () => {}]))
const keepFirst = Object.fromEntries(opts.ns.map(ns => [ns, () => 0]))

const node = await createLibp2p({
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    // js-libp2p allows one identify stream each way per connection; both sides run identify on
    // connect by themselves, so a test's own identify stream (either way) could be refused while
    // that one runs
    identify: identify({ maxInboundStreams: 8, maxOutboundStreams: 8 }),
    ping: ping(),
    dht: kadDHT({
      clientMode: false,
      peerInfoMapper: passthroughMapper,
      validators: { ...permissive, ipns: ipnsValidator },
      selectors: { ...keepFirst, ipns: ipnsSelector }
    }),
    // rlp2p announcements (rlp2p/node/announce.py): signed messages, the message id is the
    // sha256 of the data (the record), as rlp2p's
    pubsub: gossipsub({
      globalSignaturePolicy: 'StrictSign',
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      msgIdFn: (msg) => sha256.digest(msg.data).digest
    })
  }
})
await node.handle(ECHO_PROTOCOL, (stream) => handleEcho(stream))

// ---- rlp2p storage (--storage) ----

// rlp2p's provider key of a log (rlp2p/core/placement.py): CIDv1 raw sha2-256 of "/rlp2p/log/<name>"
function providerKey (name) {
  return CID.createV1(raw.code, sha256.digest(new TextEncoder().encode(`/rlp2p/log/${name}`)))
}

const storage = opts.storage ? new MemoryStore() : null
const announced = new Set()
if (storage != null) {
  // a storage peer announces each log it holds once, in the background (one provider record per log)
  const announce = (name) => {
    if (announced.has(name)) return
    announced.add(name)
    void (async () => {
      try {
        for await (const event of node.services.dht.provide(providerKey(name), { signal: AbortSignal.timeout(DEFAULT_TIMEOUT_MS) })) {
          if (event.name === 'QUERY_ERROR') log('announcing', name, 'to', event.from?.toString(), 'failed:', errorText(event.error))
        }
      } catch (err) {
        log('announcing', name, 'failed:', errorText(err))
      }
    })()
  }
  const streamOpts = { maxInboundStreams: 64, maxOutboundStreams: 64 }
  await node.handle(CAS_PROTOCOL, casHandler(storage, log), streamOpts)
  await node.handle(NS_PROTOCOL, nsHandler(storage, log, announce), streamOpts)
}

function selfAddrs () {
  const id = node.peerId.toString()
  return node.getMultiaddrs().map(ma => {
    const text = ma.toString()
    return text.includes('/p2p/') ? text : `${text}/p2p/${id}`
  })
}

// ---- commands ----

async function dhtEvents (iterable, signal, onEvent) {
  for await (const event of iterable) {
    if (signal.aborted) throw signal.reason
    if (onEvent(event) === false) break
  }
}

// ---- rlp2p announcements over gossipsub: the log's record on topic /rlp2p/log/<name> ----

const ANNOUNCE_PREFIX = '/rlp2p/log/'
const MAX_ANNOUNCEMENTS = 256
const announcements = [] // validated announcements received: { topic, from, record_b64, seq, valid }

async function judgeAnnouncement (topic, data) {
  // the same checks an rlp2p node makes: an rlp2p log topic, a record valid for that name
  if (!topic.startsWith(ANNOUNCE_PREFIX)) return { valid: false, error: 'not an rlp2p log topic' }
  const name = topic.slice(ANNOUNCE_PREFIX.length)
  try {
    await ipnsValidator(routingKeyOf(name), data)
    await ipnsValidate(peerIdFromString(name).publicKey, data)
    return { valid: true, seq: Number(unmarshalIPNSRecord(data).sequence) }
  } catch (err) {
    return { valid: false, error: errorText(err) }
  }
}

node.services.pubsub.addEventListener('gossipsub:message', (event) => {
  const { msg, propagationSource } = event.detail
  judgeAnnouncement(msg.topic, msg.data).then((verdict) => {
    if (announcements.length >= MAX_ANNOUNCEMENTS) announcements.shift()
    announcements.push({ topic: msg.topic, from: propagationSource.toString(), record_b64: toB64(msg.data), ...verdict })
  }, (err) => log('judging an announcement failed:', errorText(err)))
})

const commands = {
  async gossip_subscribe (cmd) {
    const topic = ANNOUNCE_PREFIX + requireString(cmd, 'name')
    node.services.pubsub.topicValidators.set(topic, async (_peer, msg) =>
      (await judgeAnnouncement(msg.topic, msg.data)).valid ? TopicValidatorResult.Accept : TopicValidatorResult.Reject)
    node.services.pubsub.subscribe(topic)
    return { topic }
  },

  async gossip_publish (cmd) {
    const topic = ANNOUNCE_PREFIX + requireString(cmd, 'name')
    const result = await node.services.pubsub.publish(topic, fromB64(cmd.record_b64, 'record_b64'))
    return { recipients: result.recipients.map(p => p.toString()) }
  },

  async gossip_peers (cmd) {
    const topic = ANNOUNCE_PREFIX + requireString(cmd, 'name')
    return {
      subscribers: node.services.pubsub.getSubscribers(topic).map(p => p.toString()),
      mesh: node.services.pubsub.getMeshPeers(topic).map(p => p.toString())
    }
  },

  async gossip_received () {
    return { announcements }
  },

  async dial (cmd, signal) {
    const conn = await node.dial(parseTarget(requireString(cmd, 'addr')), { signal })
    return connectionInfo(conn)
  },

  async ping (cmd, signal) {
    const text = cmd.addr ?? cmd.peerId
    if (typeof text !== 'string') throw new Error('"addr" or "peerId" is required')
    const start = performance.now()
    const rtt = await node.services.ping.ping(parseTarget(text), { signal })
    // js-libp2p measures with Date.now() (whole ms, often 0 on loopback); rtt_ms is the same
    // round trip (plus the dial if there was none) timed with the monotonic high-resolution clock
    return { rtt, rtt_ms: performance.now() - start }
  },

  async identify (cmd, signal) {
    const target = parseTarget(cmd.peerId ?? cmd.addr ?? '')
    const peerId = peerIdOf(target)
    let conn = node.getConnections(peerId).find(c => c.status === 'open')
    if (conn == null) {
      conn = await node.dial(target, { signal })
    }
    const r = await node.services.identify.identify(conn, { signal })
    return {
      peerId: r.peerId.toString(),
      protocols: [...r.protocols].sort(),
      agentVersion: r.agentVersion ?? null,
      protocolVersion: r.protocolVersion ?? null,
      listenAddrs: r.listenAddrs.map(String),
      observedAddr: r.observedAddr?.toString() ?? null
    }
  },

  async peers () {
    return {
      peers: node.getPeers().map(id => ({
        peerId: id.toString(),
        connections: node.getConnections(id).map(connectionInfo)
      }))
    }
  },

  async protocols () {
    return { protocols: [...node.getProtocols()].sort() }
  },

  async echo_call (cmd, signal) {
    const target = parseTarget(requireString(cmd, 'addr'))
    const frames = cmd.frames_b64 ?? [cmd.data_b64]
    if (!Array.isArray(frames) || frames.length === 0 || frames.length > MAX_ECHO_FRAMES) {
      throw new Error(`"data_b64" or "frames_b64" (1 to ${MAX_ECHO_FRAMES} frames) is required`)
    }
    const payloads = frames.map((f, i) => fromB64(f, `frames_b64[${i}]`))
    const stream = await node.dialProtocol(target, cmd.protocol ?? ECHO_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
      // all frames first, then all answers: the peer must cope with pipelined frames
      await lp.writeV(payloads, { signal })
      const answers = []
      for (let i = 0; i < payloads.length; i++) {
        answers.push(toB64((await lp.read({ signal })).subarray()))
      }
      await stream.close({ signal })
      return { protocol: stream.protocol, data_b64: answers[0], frames_b64: answers }
    } catch (err) {
      stream.abort(err)
      throw err
    }
  },

  async add_peer (cmd, signal) {
    const addr = multiaddr(requireString(cmd, 'addr'))
    const peerId = peerIdOf(addr)
    await node.peerStore.merge(peerId, { multiaddrs: [addr.decapsulate('/p2p/' + peerId.toString())] }, { signal })
    const conn = await node.dial(addr, { signal })
    await node.services.dht.routingTable.add(peerId, { signal })
    const found = await node.services.dht.routingTable.find(peerId, { signal })
    if (found == null) throw new Error(`${peerId} was not added to the routing table`)
    return { ...connectionInfo(conn), routingTableSize: node.services.dht.routingTable.size }
  },

  async dht_put (cmd, signal) {
    const key = fromB64(cmd.key_b64, 'key_b64')
    const value = fromB64(cmd.value_b64, 'value_b64')
    const storedAt = new Set()
    const errors = []
    await dhtEvents(node.services.dht.put(key, value, { signal }), signal, (event) => {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') {
        storedAt.add(event.from.toString())
      } else if (event.name === 'QUERY_ERROR' && errors.length < MAX_RESULTS) {
        errors.push({ from: event.from?.toString() ?? null, error: errorText(event.error) })
      }
    })
    // a peer whose answer did not echo the record shows up in both lists
    return { stored_at: [...storedAt].sort(), errors }
  },

  async dht_get (cmd, signal) {
    const key = fromB64(cmd.key_b64, 'key_b64')
    const self = node.peerId.toString()
    const values = []
    await dhtEvents(node.services.dht.get(key, { signal }), signal, (event) => {
      if (event.name === 'VALUE' && values.length < MAX_RESULTS) {
        values.push({ from: event.from.toString(), value_b64: toB64(event.value) })
      }
    })
    if (values.length === 0) throw new Error('NotFoundError: no value for this key')
    // kad-dht yields every value it received, then the best one (its selector's pick) last
    const best = values[values.length - 1]
    return { value_b64: best.value_b64, from: best.from, local: best.from === self, values }
  },

  async provide (cmd, signal) {
    const cid = CID.parse(requireString(cmd, 'cid'))
    const sentTo = new Set()
    const errors = []
    await dhtEvents(node.services.dht.provide(cid, { signal }), signal, (event) => {
      if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') {
        sentTo.add(event.from.toString())
      } else if (event.name === 'QUERY_ERROR' && errors.length < MAX_RESULTS) {
        errors.push({ from: event.from?.toString() ?? null, error: errorText(event.error) })
      }
    })
    return { sent_to: [...sentTo].sort(), errors }
  },

  async find_providers (cmd, signal) {
    const cid = CID.parse(requireString(cmd, 'cid'))
    const limit = cmd.limit == null ? MAX_RESULTS : Math.min(positiveInt(cmd.limit, 'limit'), MAX_RESULTS)
    const providers = new Map()
    await dhtEvents(node.services.dht.findProviders(cid, { signal }), signal, (event) => {
      if (event.name !== 'PROVIDER') return true
      for (const p of event.providers) {
        const id = p.id.toString()
        const addrs = new Set(providers.get(id)?.addrs ?? [])
        p.multiaddrs.forEach(ma => addrs.add(ma.toString()))
        providers.set(id, { peerId: id, addrs: [...addrs] })
      }
      return providers.size < limit
    })
    return { providers: [...providers.values()] }
  }
}

// ---- IPNS records and rlp2p logs ----

Object.assign(commands, {
  // validate a record as the js ipns package does, for the log (IPNS) name `name`
  async ipns_validate (cmd) {
    const name = requireString(cmd, 'name')
    const bytes = fromB64(cmd.record_b64, 'record_b64')
    const routingKey = routingKeyOf(name)
    let record
    try {
      record = unmarshalIPNSRecord(bytes)
      // the DHT validator: size, key against the routing key, then validate() (signature V2,
      // CBOR data against the V1 fields, validity type and expiry)
      await ipnsValidator(routingKey, bytes)
      // and validate() against the public key the name holds, as a resolver does
      await ipnsValidate(peerIdFromString(name).publicKey, bytes)
    } catch (err) {
      return { valid: false, error: errorText(err) }
    }
    let head = null
    try {
      head = CID.decode(parseHeadValue(record.value)).toString()
    } catch {}
    return { valid: true, record: describeRecord(record), head }
  },

  // create a record with js ipns for a libp2p-protobuf private key (base64): the same log key
  // on both sides
  async ipns_create (cmd) {
    const { key, protobufImport } = await importPrivateKey(fromB64(cmd.private_key_b64, 'private_key_b64'))
    const value = requireString(cmd, 'value')
    const seq = BigInt(cmd.seq ?? 0)
    const options = { v1Compatible: cmd.v1_compatible ?? true }
    if (cmd.ttl_ns != null) options.ttlNs = BigInt(cmd.ttl_ns)
    const record = typeof cmd.validity === 'string'
      ? await createIPNSRecordWithExpiration(key, value, seq, cmd.validity, options)
      : await createIPNSRecord(key, value, seq, positiveInt(cmd.lifetime_ms ?? 3_600_000, 'lifetime_ms'), options)
    const peerId = peerIdFromPrivateKey(key)
    return {
      protobuf_import: protobufImport,
      name: peerId.toString(),
      routing_key_b64: toB64(routingKeyOf(peerId.toString())),
      record_b64: toB64(marshalIPNSRecord(record)),
      record: describeRecord(record)
    }
  },

  // rlp2p's provider key of a log, computed here from its definition
  async provider_key (cmd) {
    return { cid: providerKey(requireString(cmd, 'name')).toString() }
  },

  // sync a log from rlp2p storage peers with the JavaScript client (rlp2p-client.mjs)
  async rl_sync (cmd, signal) {
    return await syncLog(node, {
      name: requireString(cmd, 'name'),
      peers: cmd.peers,
      deliveredSeq: cmd.delivered_seq ?? 0,
      capability: cmd.capability ?? null,
      signal
    })
  },

  // what the --storage peer holds
  async storage_info () {
    if (storage == null) throw new Error('not a storage peer (start with --storage)')
    return { ...storage.info(), announced: [...announced].sort() }
  }
})

// libp2p's crypto.proto PrivateKey, to read the key form js's privateKeyFromProtobuf refuses
const PrivateKeyPb = protobuf.parse(
  'syntax = "proto2"; message PrivateKey { required int32 Type = 1; required bytes Data = 2; }'
).root.lookupType('PrivateKey')
const ED25519 = 1

// A libp2p-protobuf private key. js (like go) wants an Ed25519 key's Data as 64 bytes, seed then
// public key; py-libp2p's PrivateKey.serialize(), hence rlp2p's key files, write the 32-byte
// seed alone. Take both, and say which path was used: protobufImport is "ok" when js's own
// privateKeyFromProtobuf took the bytes, else its error.
async function importPrivateKey (bytes) {
  try {
    return { key: privateKeyFromProtobuf(bytes), protobufImport: 'ok' }
  } catch (err) {
    const pbKey = PrivateKeyPb.decode(bytes)
    if (pbKey.Type !== ED25519 || pbKey.Data.byteLength !== 32) throw err
    return { key: await generateKeyPairFromSeed('Ed25519', pbKey.Data), protobufImport: errorText(err) }
  }
}

function connectionInfo (conn) {
  return {
    peerId: conn.remotePeer.toString(),
    remoteAddr: conn.remoteAddr.toString(),
    direction: conn.direction,
    encryption: conn.encryption ?? null,
    multiplexer: conn.multiplexer ?? null,
    status: conn.status
  }
}

// ---- the JSON-line loop ----

let stopping = false

function send (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function stopWithin (ms) {
  let timer
  try {
    await Promise.race([
      node.stop(),
      new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`libp2p did not stop within ${ms} ms`)), ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

async function shutdown (code, reason) {
  if (stopping) return
  stopping = true
  log(`stopping (${reason})`)
  try {
    await stopWithin(STOP_TIMEOUT_MS)
  } catch (err) {
    log('stop failed:', errorText(err))
    code = code === 0 ? 1 : code
  }
  process.exit(code)
}

async function run (line) {
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (err) {
    send({ id: null, ok: false, error: `bad JSON: ${err.message}` })
    return
  }
  const id = cmd?.id ?? null
  if (cmd == null || typeof cmd !== 'object' || typeof cmd.cmd !== 'string') {
    send({ id, ok: false, error: 'a command is an object with a string "cmd"' })
    return
  }
  if (cmd.cmd === 'stop') {
    if (stopping) {
      send({ id, ok: false, error: 'already stopping' })
      return
    }
    stopping = true
    try {
      await stopWithin(STOP_TIMEOUT_MS)
      send({ id, ok: true })
      process.exit(0)
    } catch (err) {
      send({ id, ok: false, error: errorText(err) })
      process.exit(1)
    }
  }
  const handler = Object.hasOwn(commands, cmd.cmd) ? commands[cmd.cmd] : null
  if (handler == null) {
    send({ id, ok: false, error: `unknown command "${cmd.cmd}"` })
    return
  }
  if (stopping) {
    send({ id, ok: false, error: 'stopping' })
    return
  }
  let timeoutMs = DEFAULT_TIMEOUT_MS
  let timer
  try {
    if (cmd.timeout_ms != null) timeoutMs = positiveInt(cmd.timeout_ms, 'timeout_ms')
    const controller = new AbortController()
    // the handler gets a signal; the race answers even if something ignores it
    const timedOut = new Promise((resolve, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`"${cmd.cmd}" timed out after ${timeoutMs} ms`)
        err.name = 'TimeoutError'
        controller.abort(err)
        reject(err)
      }, timeoutMs)
    })
    const result = await Promise.race([handler(cmd, controller.signal), timedOut])
    send({ id, ok: true, ...result })
  } catch (err) {
    send({ id, ok: false, error: errorText(err) })
  } finally {
    clearTimeout(timer)
  }
}

process.on('unhandledRejection', (err) => log('unhandled rejection:', errorText(err)))
process.on('SIGTERM', () => { void shutdown(0, 'SIGTERM') })
process.on('SIGINT', () => { void shutdown(0, 'SIGINT') })

send({ ready: true, peerId: node.peerId.toString(), addrs: selfAddrs() })
log('ready', node.peerId.toString(), selfAddrs().join(' '))

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on('line', (line) => {
  if (line.trim() === '') return
  void run(line)
})
lines.on('close', () => { void shutdown(0, 'stdin closed') })
