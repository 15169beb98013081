// A JavaScript client of rlp2p's /vac/cas/1.0.0 and /vac/ns/1.0.0, and a reader that syncs a
// remote log with it, written from ../proto/ and the protocol description in docs/design.md only.
//
//   const result = await syncLog(libp2p, { name, peers: [multiaddr...], deliveredSeq: 0, signal })
//
// 1. Fetch the log's record over NS from every given peer at once, validate each with js `ipns`
//    against the standard routing key of the name, keep the best (sequence, then validity).
// 2. Walk the RemoteLog pages from the head along `tail` over one CAS stream, checking every
//    block against the address it was asked for and every page's invariants (pairs newest first,
//    consecutive seqs, each tail page ending where the newer one starts, the page with seq 1 has
//    no tail), until the page holding deliveredSeq + 1.
// 3. Fetch the message blocks that are not embedded, pipelined on the same stream (a window of
//    requests ahead of the answers), check each block's sha2-256 against its CID and each
//    message's MVDS id against its pair's localHash.
// 4. Return the messages after deliveredSeq, oldest first.
//
// Any failure on a replica (a refused, missing or wrong block, a dead stream) moves to the next
// replica holding the best record, then to the others; what was already verified is kept.
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import {
  CAS_PROTOCOL, LIMITS, MESSAGE_ID_SIZE, NS_PROTOCOL, Long, WireError, addressText, betterRecord, bytesEqual, bytesOf,
  decode, decodeMessage, describeRecord, encode, enumName, parseAddress, pb, toHex, verifyBlock, verifyRecord
} from './rlp2p-wire.mjs'
import { CapabilityError, CapabilityRequired, Keyring, SEAL_VERSION, WrongCapability, parseCapability } from './rlp2p-private.mjs'

// requests in flight on one stream before the client waits for answers (rlp2p's default too)
export const WINDOW = 64
// most replicas one sync asks
const MAX_PEERS = 16
// message blocks asked for in one pipelined batch
const BLOCK_BATCH = 256

export class RemoteError extends Error {
  name = 'RemoteError'
  constructor (code, message) {
    super(`${code}: ${message}`)
    this.code = code
  }
}

export class SyncError extends Error {
  name = 'SyncError'
}

// ---- one request stream ----

export class RpcStream {
  constructor (stream) {
    this.stream = stream
    this.lp = lpStream(stream, { maxDataLength: LIMITS.maxFrame, maxBufferSize: LIMITS.maxBuffered })
    this.requests = 0
    this.roundTrips = 0
  }

  static async open (libp2p, peer, protocol, signal) {
    const stream = await libp2p.dialProtocol(peer, protocol, { signal })
    return new RpcStream(stream)
  }

  // send every request, at most `window` ahead of the answers; the answers, in order
  async callMany (frames, signal, window = WINDOW) {
    const answers = []
    let sent = 0
    while (answers.length < frames.length) {
      if (sent < frames.length && sent - answers.length < window) {
        const batch = frames.slice(sent, Math.min(frames.length, answers.length + window))
        await this.lp.writeV(batch, { signal })
        sent += batch.length
        this.requests += batch.length
        this.roundTrips += 1
      }
      answers.push((await this.lp.read({ signal })).subarray())
    }
    return answers
  }

  async call (frame, signal) {
    return (await this.callMany([frame], signal))[0]
  }

  async close (signal) {
    try {
      await this.stream.close({ signal })
    } catch (err) {
      this.stream.abort(err)
    }
  }

  abort (err) {
    this.stream.abort(err)
  }
}

// ---- CAS ----

export class CasClient {
  constructor (rpc) {
    this.rpc = rpc
  }

  // per address: { data } verified against the address, or { error }
  async getMany (addresses, signal) {
    const frames = await this.rpc.callMany(addresses.map(id => encode(pb.CasRequest, { get: { id } })), signal)
    return frames.map((frame, i) => {
      const response = decode(pb.CasResponse, frame)
      if (response.result === 'content') {
        const data = bytesOf(response.content.data)
        try {
          verifyBlock(addresses[i], data)
        } catch (err) {
          return { error: err }
        }
        return { data }
      }
      if (response.result === 'error') {
        return { error: new RemoteError(enumName(pb.CasErrorCode, response.error.code), response.error.message) }
      }
      return { error: new WireError(`unexpected answer to get: ${response.result}`) }
    })
  }

  async get (address, signal) {
    const [answer] = await this.getMany([address], signal)
    if (answer.error != null) throw answer.error
    return answer.data
  }

  // store blocks; their addresses, each checked against our own computation of it
  async addMany (blocks, signal) {
    const frames = await this.rpc.callMany(blocks.map(data => encode(pb.CasRequest, { add: { data } })), signal)
    return frames.map((frame) => {
      const response = decode(pb.CasResponse, frame)
      if (response.result === 'error') {
        throw new RemoteError(enumName(pb.CasErrorCode, response.error.code), response.error.message)
      }
      if (response.result !== 'address') throw new WireError(`unexpected answer to add: ${response.result}`)
      return bytesOf(response.address.id)
    })
  }
}

// ---- NS ----

export class NsClient {
  constructor (rpc) {
    this.rpc = rpc
  }

  // the raw record a peer holds for `name` (not yet verified)
  async fetchRaw (name, signal) {
    const response = decode(pb.NsResponse, await this.rpc.call(encode(pb.NsRequest, { fetch: { name } }), signal))
    if (response.result === 'error') {
      throw new RemoteError(enumName(pb.NsErrorCode, response.error.code), response.error.message)
    }
    if (response.result !== 'content') throw new WireError(`unexpected answer to fetch: ${response.result}`)
    return bytesOf(response.content.data)
  }

  // the peer's record for `name`, validated by js ipns and read as rlp2p does
  async fetch (name, signal) {
    return await verifyRecord(name, await this.fetchRaw(name, signal))
  }

  // { status, error }: status is the Response.Status name ("OK", "STALE", ...)
  async update (name, record, signal) {
    const response = decode(pb.NsResponse, await this.rpc.call(encode(pb.NsRequest, { update: { name, content: record } }), signal))
    if (response.result === 'error') {
      throw new RemoteError(enumName(pb.NsErrorCode, response.error.code), response.error.message)
    }
    if (response.result !== 'response') throw new WireError(`unexpected answer to update: ${response.result}`)
    return { status: enumName(pb.NsStatus, response.response.status ?? 0), error: response.response.error ?? '' }
  }
}

// ---- pages ----

// Decode and check one RemoteLog page, as rlp2p's Page.decode does. Embedded messages are checked
// here (their CID and MVDS id); the others are returned as wanted blocks.
export function decodePage (data, keyring = null) {
  if (data.byteLength > LIMITS.maxBlock) throw new WireError(`page of ${data.byteLength} bytes is over ${LIMITS.maxBlock}`)
  const page = decode(pb.RemoteLog, data)
  const pairs = page.pair ?? []
  const tailBytes = bytesOf(page.tail)
  const tail = tailBytes.byteLength > 0 ? tailBytes : null
  if (pairs.length > LIMITS.maxPagePairs) throw new WireError(`page of ${pairs.length} pairs is over ${LIMITS.maxPagePairs}`)
  const sealed = page.sealed ?? 0
  if (sealed !== 0 && keyring == null) throw new CapabilityRequired('a private log: reading it takes its capability')
  if (keyring != null && sealed !== SEAL_VERSION) throw new WrongCapability(`a capability for a page with seal version ${sealed}`)
  if (tail != null) parseAddress(tail)
  if (pairs.length === 0) {
    if (tail != null) throw new WireError('a page with no pairs has a tail')
    return { pairs: [], tail: null, newest: 0, oldest: 0, cas: (page.cas ?? []).map(bytesOf) }
  }
  const newest = Long.fromValue(pairs[0].seq ?? 0)
  const out = []
  pairs.forEach((p, i) => {
    const seq = Long.fromValue(p.seq ?? 0)
    const where = `pair ${i} (seq ${seq})`
    const remoteHash = bytesOf(p.remoteHash)
    const localHash = bytesOf(p.localHash)
    const data = bytesOf(p.data)
    if (seq.lessThan(1)) throw new WireError(`${where}: no seq`)
    if (!seq.equals(newest.subtract(i))) throw new WireError(`${where}: seqs must be consecutive, newest first`)
    if (localHash.byteLength !== MESSAGE_ID_SIZE) throw new WireError(`${where}: localHash is not ${MESSAGE_ID_SIZE} bytes`)
    parseAddress(remoteHash)
    const pair = { seq: seq.toNumber(), remoteHash, localHash, message: null }
    if (data.byteLength > 0) {
      verifyBlock(remoteHash, data)
      pair.message = checkedMessage(where, data, localHash, keyring)
    }
    out.push(pair)
  })
  const oldest = out[out.length - 1].seq
  if (oldest === 1 && tail != null) throw new WireError('the page holding seq 1 has a tail')
  if (oldest > 1 && tail == null) throw new WireError(`the page ends at seq ${oldest} but has no tail`)
  return { pairs: out, tail, newest: newest.toNumber(), oldest, cas: (page.cas ?? []).map(bytesOf) }
}

function checkedMessage (where, data, localHash, keyring = null) {
  // a private log: the block is sealed and localHash is the keyed id (rlp2p-private.mjs)
  if (keyring != null) return keyring.open(data, localHash)
  const message = decodeMessage(data)
  if (!bytesEqual(message.id, localHash)) throw new WireError(`${where}: the message's MVDS id is not localHash`)
  return message
}

// ---- sync ----

// What one sync does; every counter is for the test's report.
class Walk {
  constructor (head, deliveredSeq, keyring = null) {
    this.keyring = keyring
    this.next = head // the page to fetch next, or null when the walk is over
    this.deliveredSeq = deliveredSeq
    this.expectNewest = null // a tail page must end where the newer page starts
    this.headSeq = null
    this.pages = 0
    this.messages = new Map() // seq -> message
    this.wanted = new Map() // hex address -> { address, localHash, seqs }
  }

  takePage (address, data) {
    const page = decodePage(data, this.keyring)
    if (this.headSeq == null) {
      this.headSeq = page.newest
      if (page.newest < this.deliveredSeq) throw new SyncError(`the log was rewritten: head seq ${page.newest} < delivered ${this.deliveredSeq}`)
    } else if (page.pairs.length === 0 || page.newest !== this.expectNewest) {
      throw new WireError(`page ${addressText(address)} ends at seq ${page.newest}, expected ${this.expectNewest}`)
    }
    this.pages += 1
    for (const pair of page.pairs) {
      if (pair.seq <= this.deliveredSeq) continue
      if (pair.message != null) {
        this.messages.set(pair.seq, pair.message)
      } else {
        const key = toHex(pair.remoteHash)
        const w = this.wanted.get(key) ?? { address: pair.remoteHash, localHash: pair.localHash, seqs: [] }
        if (!bytesEqual(w.localHash, pair.localHash)) throw new WireError(`the same block has two MVDS ids (seq ${pair.seq})`)
        w.seqs.push(pair.seq)
        this.wanted.set(key, w)
      }
    }
    const done = page.pairs.length === 0 || page.oldest <= this.deliveredSeq + 1 || page.tail == null
    this.next = done ? null : page.tail
    this.expectNewest = page.oldest - 1
  }

  takeBlock (w, data) {
    const message = checkedMessage(`block ${addressText(w.address)}`, data, w.localHash, this.keyring)
    for (const seq of w.seqs) this.messages.set(seq, message)
    this.wanted.delete(toHex(w.address))
  }

  result () {
    const out = []
    for (let seq = this.deliveredSeq + 1; seq <= (this.headSeq ?? 0); seq++) {
      const m = this.messages.get(seq)
      if (m == null) throw new SyncError(`message seq ${seq} is missing after the sync`)
      out.push({
        seq,
        id: toHex(m.id),
        group_id: toHex(m.group_id),
        timestamp: m.timestamp.toString(),
        body_b64: Buffer.from(m.body).toString('base64')
      })
    }
    return out
  }
}

export async function syncLog (libp2p, { name, peers, deliveredSeq = 0, signal, capability = null }) {
  // a private log: the capability names the log and opens its blocks
  const keyring = capability == null ? null : new Keyring(parseCapability(capability))
  if (keyring != null) name = keyring.name
  if (!Array.isArray(peers) || peers.length === 0 || peers.length > MAX_PEERS) {
    throw new Error(`"peers" must list 1 to ${MAX_PEERS} multiaddrs`)
  }
  if (!Number.isSafeInteger(deliveredSeq) || deliveredSeq < 0) throw new Error('"delivered_seq" must be a non-negative integer')
  const targets = peers.map(p => multiaddr(p))
  const report = { streams: 0, requests: 0, round_trips: 0, peers_used: [], bypassed: {} }

  // 1. the record, from every peer at once
  const found = await Promise.all(targets.map(async (target) => {
    let rpc
    try {
      rpc = await RpcStream.open(libp2p, target, NS_PROTOCOL, signal)
      report.streams += 1
      const info = await new NsClient(rpc).fetch(name, signal)
      report.requests += 1
      await rpc.close(signal)
      return { target, info }
    } catch (err) {
      rpc?.abort(err)
      report.bypassed[target.toString()] = `record: ${err.name}: ${err.message}`
      return null
    }
  }))
  report.round_trips += 1
  const holders = found.filter(f => f != null)
  if (holders.length === 0) throw new SyncError(`no peer gave a valid record for ${name}: ${JSON.stringify(report.bypassed)}`)
  const best = holders.reduce((a, b) => (betterRecord(b.info, a.info) ? b : a))
  // replicas with the best record first; the others may still hold the blocks (content-addressed)
  const order = [
    ...holders.filter(h => h.info.sequence === best.info.sequence).map(h => h.target),
    ...targets.filter(t => !holders.some(h => h.target === t && h.info.sequence === best.info.sequence))
  ]

  // 2 and 3. the walk, then the blocks, over one pipelined CAS stream, falling over on any failure
  const walk = new Walk(best.info.head, deliveredSeq, keyring)
  let cas = null
  let current = null
  const count = (rpc) => {
    report.requests += rpc.requests
    report.round_trips += rpc.roundTrips
  }
  // every round fetches a page or a batch of blocks, or moves to the next replica
  const maxRounds = () => LIMITS.maxPagesWalk + Math.ceil((walk.headSeq ?? 0) / BLOCK_BATCH) + 2 * MAX_PEERS + 2
  try {
    for (let round = 0; round < maxRounds(); round++) {
      if (walk.next == null && walk.wanted.size === 0) break
      if (cas == null) {
        current = order.shift()
        if (current == null) throw new SyncError(`no replica could serve the rest of ${name}: ${JSON.stringify(report.bypassed)}`)
        try {
          cas = new CasClient(await RpcStream.open(libp2p, current, CAS_PROTOCOL, signal))
          report.streams += 1
          report.peers_used.push(current.toString())
        } catch (err) {
          report.bypassed[current.toString()] = `cas: ${err.name}: ${err.message}`
          cas = null
          continue
        }
      }
      try {
        if (walk.next != null) {
          const address = walk.next
          walk.takePage(address, await cas.get(address, signal))
        } else {
          const wanted = [...walk.wanted.values()].slice(0, BLOCK_BATCH)
          const answers = await cas.getMany(wanted.map(w => w.address), signal)
          let failed = null
          answers.forEach((a, i) => {
            if (a.error != null) {
              failed ??= a.error
              return
            }
            try {
              walk.takeBlock(wanted[i], a.data)
            } catch (err) {
              failed ??= err
            }
          })
          if (failed != null) throw failed
        }
      } catch (err) {
        if (signal?.aborted) throw err
        if (err instanceof CapabilityError) throw err // the bytes matched their address: no replica helps
        report.bypassed[current.toString()] = `cas: ${err.name}: ${err.message}`
        count(cas.rpc)
        cas.rpc.abort(err)
        cas = null
      }
    }
    if (walk.next != null || walk.wanted.size > 0) throw new SyncError(`sync of ${name} did not finish`)
  } finally {
    if (cas != null) {
      count(cas.rpc)
      await cas.rpc.close(signal)
    }
  }
  return {
    name,
    record: { ...describeRecord(best.info.record), head: addressText(best.info.head) },
    record_from: best.target.toString(),
    head_seq: walk.headSeq,
    messages: walk.result(),
    pages: walk.pages,
    ...report
  }
}
