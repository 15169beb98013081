// A JavaScript rlp2p storage peer: the /vac/cas/1.0.0 and /vac/ns/1.0.0 servers, keeping blocks and
// records in memory, written from ../proto/ and the protocol description in docs/design.md only.
//
// The rules are rlp2p's (docs/design.md, "Wire" and "Limits and bad input"):
// - frames are unsigned-varint length-prefixed envelopes (CasRequest/CasResponse,
//   NsRequest/NsResponse); several requests may be in flight on one stream and are answered in
//   order;
// - CAS Add recomputes the address (CIDv1, raw, sha2-256) of what it is given and never takes the
//   client's word; Get refuses anything but such a CID (BAD_ADDRESS) and answers NOT_FOUND for a
//   block it does not hold;
// - NS Update accepts a record only if js `ipns` validates it against the name's routing key and
//   its value is "/ipfs/<CAS address>" (else INVALID_RECORD, or TOO_LARGE over 10 KiB), and only
//   if its sequence beats the record held (else STALE; an equal sequence is refused too);
// - a malformed request gets BAD_REQUEST and the stream is closed; an unknown method gets
//   BAD_REQUEST and the stream keeps serving; an oversize frame gets TOO_LARGE and a reset; an
//   idle or broken stream is reset. Nothing a peer sends stops the node serving others.
import { lpStream } from '@libp2p/utils'
import {
  LIMITS, RecordError, WireError, addressOf, bytesOf, decode, encode, parseAddress, pb, toHex, verifyRecord
} from './rlp2p-wire.mjs'

const IDLE_MS = 30_000
const MAX_REQUESTS_PER_STREAM = 1_000_000
// what the node keeps in all; an Add past it is refused with UNAVAILABLE
const MAX_STORED_BYTES = 512 * 1024 * 1024
const MAX_NAMES = 100_000

export class MemoryStore {
  constructor () {
    this.blocks = new Map() // hex address -> bytes
    this.records = new Map() // name -> { raw, sequence, validity }
    this.bytes = 0
    this.adds = 0
    this.updates = 0
  }

  info () {
    return {
      blocks: this.blocks.size,
      bytes: this.bytes,
      adds: this.adds,
      updates: this.updates,
      records: Object.fromEntries([...this.records].map(([name, r]) => [name, String(r.sequence)]))
    }
  }
}

// ---- the server loop ----

async function serve (stream, handleFrame, errorFrame, log) {
  const lp = lpStream(stream, { maxDataLength: LIMITS.maxFrame, maxBufferSize: LIMITS.maxBuffered })
  try {
    for (let i = 0; i < MAX_REQUESTS_PER_STREAM; i++) {
      let frame
      try {
        frame = (await lp.read({ signal: AbortSignal.timeout(IDLE_MS) })).subarray()
      } catch (err) {
        if (err.name === 'UnexpectedEOFError') break // the client closed its side
        if (err.name === 'InvalidDataLengthError' || err.name === 'InvalidDataLengthLengthError') {
          // the stream can no longer be framed: say why, then reset
          await lp.write(errorFrame('TOO_LARGE', err.message), { signal: AbortSignal.timeout(IDLE_MS) })
        }
        throw err
      }
      const { reply, keepOpen } = await handleFrame(frame)
      await lp.write(reply, { signal: AbortSignal.timeout(IDLE_MS) })
      if (!keepOpen) break
    }
    await stream.close({ signal: AbortSignal.timeout(IDLE_MS) })
  } catch (err) {
    log(`${stream.protocol ?? 'rlp2p'} stream reset: ${err.name}: ${err.message}`)
    stream.abort(err)
  }
}

// ---- CAS ----

function casError (code, message) {
  return encode(pb.CasResponse, { error: { code: pb.CasErrorCode[code], message: String(message).slice(0, 500) } })
}

export function casHandler (store, log) {
  async function handleFrame (frame) {
    let request
    try {
      request = decode(pb.CasRequest, frame)
    } catch (err) {
      return { reply: casError('BAD_REQUEST', err.message), keepOpen: false }
    }
    if (request.method === 'add') {
      const data = bytesOf(request.add.data)
      if (data.byteLength > LIMITS.maxBlock) {
        return { reply: casError('TOO_LARGE', `block of ${data.byteLength} bytes is over ${LIMITS.maxBlock}`), keepOpen: true }
      }
      const address = addressOf(data) // recomputed: never the client's word
      const key = toHex(address)
      if (!store.blocks.has(key)) {
        if (store.bytes + data.byteLength > MAX_STORED_BYTES) {
          return { reply: casError('UNAVAILABLE', 'storage full'), keepOpen: true }
        }
        store.blocks.set(key, Uint8Array.from(data))
        store.bytes += data.byteLength
      }
      store.adds += 1
      return { reply: encode(pb.CasResponse, { address: { id: address } }), keepOpen: true }
    }
    if (request.method === 'get') {
      const address = bytesOf(request.get.id)
      try {
        parseAddress(address)
      } catch (err) {
        return { reply: casError('BAD_ADDRESS', err.message), keepOpen: true }
      }
      const data = store.blocks.get(toHex(address))
      if (data == null) return { reply: casError('NOT_FOUND', 'no such block'), keepOpen: true }
      return { reply: encode(pb.CasResponse, { content: { data } }), keepOpen: true }
    }
    // an unknown method leaves the framing intact: answer, keep serving
    return { reply: casError('BAD_REQUEST', 'unknown or missing method'), keepOpen: true }
  }
  return (stream) => serve(stream, handleFrame, casError, log)
}

// ---- NS ----

function nsError (code, message) {
  return encode(pb.NsResponse, { error: { code: pb.NsErrorCode[code], message: String(message).slice(0, 500) } })
}

function nsStatus (status, message = '') {
  return encode(pb.NsResponse, { response: { status: pb.NsStatus[status], error: String(message).slice(0, 500) } })
}

export function nsHandler (store, log, onAccepted = () => {}) {
  async function update (name, record) {
    if (name.length > LIMITS.maxName) return nsStatus('BAD_REQUEST', `name longer than ${LIMITS.maxName}`)
    if (record.byteLength > LIMITS.maxRecord) {
      return nsStatus('TOO_LARGE', `record of ${record.byteLength} bytes is over ${LIMITS.maxRecord}`)
    }
    let info
    try {
      info = await verifyRecord(name, record)
    } catch (err) {
      if (err instanceof RecordError || err instanceof WireError) return nsStatus('INVALID_RECORD', err.message)
      throw err
    }
    // checked and written with no await in between: two updates cannot interleave here
    const held = store.records.get(name)
    if (held != null && held.sequence >= info.sequence) {
      return nsStatus('STALE', `sequence ${info.sequence} does not beat the held ${held.sequence}`)
    }
    if (held == null && store.records.size >= MAX_NAMES) return nsStatus('UNAVAILABLE', 'too many names')
    store.records.set(name, { raw: Uint8Array.from(record), sequence: info.sequence, validity: info.validity })
    store.updates += 1
    onAccepted(name)
    return nsStatus('OK')
  }

  async function handleFrame (frame) {
    let request
    try {
      request = decode(pb.NsRequest, frame)
    } catch (err) {
      return { reply: nsError('BAD_REQUEST', err.message), keepOpen: false }
    }
    if (request.method === 'update') {
      return { reply: await update(request.update.name ?? '', bytesOf(request.update.content)), keepOpen: true }
    }
    if (request.method === 'fetch') {
      const name = request.fetch.name ?? ''
      if (name.length > LIMITS.maxName) return { reply: nsError('BAD_REQUEST', `name longer than ${LIMITS.maxName}`), keepOpen: true }
      const held = store.records.get(name)
      if (held == null) return { reply: nsError('NOT_FOUND', `no record for ${name}`), keepOpen: true }
      return { reply: encode(pb.NsResponse, { content: { data: held.raw } }), keepOpen: true }
    }
    return { reply: nsError('BAD_REQUEST', 'unknown or missing method'), keepOpen: true }
  }
  return (stream) => serve(stream, handleFrame, nsError, log)
}
