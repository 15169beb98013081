// rlp2p's wire formats, written a second time in JavaScript from the files in ../proto/ only.
//
// The message types come from ../proto/vac/*.proto, loaded at run time by protobufjs (nothing is
// generated or copied from the Python code). This module holds what both the client
// (rlp2p-client.mjs) and the storage peer (rlp2p-storage.mjs) need:
//
// - the protobuf types (`pb`), with field names exactly as the .proto files spell them;
// - CAS addresses (H2): binary CIDv1, raw codec, sha2-256 multihash, via `multiformats`;
// - MVDS message ids (H1): sha256("MESSAGE_ID" + group_id + int64 LE timestamp + body);
// - IPNS records for a log name: validated by the js `ipns` package against the standard binary
//   routing key, then checked the way rlp2p reads them (Value is "/ipfs/<CAS address>");
// - the limits, the same numbers as rlp2p/limits.py's defaults.
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { peerIdFromString } from '@libp2p/peer-id'
import { multihashToIPNSRoutingKey, unmarshalIPNSRecord } from 'ipns'
import { ipnsValidator } from 'ipns/validator'
import protobuf from 'protobufjs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

export const CAS_PROTOCOL = '/vac/cas/1.0.0'
export const NS_PROTOCOL = '/vac/ns/1.0.0'

const KiB = 1024
const MiB = 1024 * KiB

// rlp2p/limits.py's defaults: every size and count read from a peer is checked against these
export const LIMITS = Object.freeze({
  maxBlock: 8 * MiB,
  maxMessage: 1 * MiB,
  maxPagePairs: 100_000,
  maxPagesWalk: 100_000,
  maxRecord: 10 * KiB,
  maxName: 256,
  maxFrame: 8 * MiB + 4 * KiB,
  // bytes a byte stream may buffer before it is read: a peer pipelining more than this many bytes
  // of requests ahead of the answers has its stream reset (js-libp2p streams push data as it
  // arrives, so this buffer, not flow control, bounds what a pipelining client can send)
  maxBuffered: 64 * MiB
})

export const MESSAGE_ID_SIZE = 32
const ADDRESS_SIZE = 36 // CIDv1 raw sha2-256: version, codec, hash code, digest length, 32 bytes

// ---- protobuf types, from ../proto/vac/*.proto ----

const PROTO_DIR = fileURLToPath(new URL('../proto/vac/', import.meta.url))
const root = new protobuf.Root()
// keepCase: the fields keep the .proto names (group_id, remoteHash), not camelCase
root.loadSync(['mvds.proto', 'cas.proto', 'ns.proto', 'remotelog.proto'].map(f => PROTO_DIR + f), { keepCase: true })

export const pb = Object.freeze({
  Message: root.lookupType('vac.mvds.Message'),
  CasRequest: root.lookupType('vac.cas.CasRequest'),
  CasResponse: root.lookupType('vac.cas.CasResponse'),
  CasErrorCode: root.lookupEnum('vac.cas.Error.Code').values,
  NsRequest: root.lookupType('vac.ns.NsRequest'),
  NsResponse: root.lookupType('vac.ns.NsResponse'),
  NsStatus: root.lookupEnum('vac.ns.Response.Status').values,
  NsErrorCode: root.lookupEnum('vac.ns.Error.Code').values,
  RemoteLog: root.lookupType('vac.remotelog.RemoteLog')
})
export const Long = protobuf.util.Long

// a bytes field as decoded: protobufjs leaves an absent proto3 bytes field as its default, an
// empty Array, not a Uint8Array
export function bytesOf (value) {
  return value instanceof Uint8Array ? value : Uint8Array.from(value ?? [])
}

export function encode (type, object) {
  return type.encode(type.create(object)).finish()
}

// decode, or throw a WireError naming the type (protobufjs throws plain Errors and RangeErrors)
export function decode (type, bytes) {
  try {
    return type.decode(bytes)
  } catch (err) {
    throw new WireError(`malformed ${type.fullName.slice(1)}: ${err.message}`)
  }
}

// the name of an enum value, or the number when this version does not know it
export function enumName (values, n) {
  return Object.keys(values).find(k => values[k] === n) ?? String(n)
}

export class WireError extends Error {
  name = 'WireError'
}

export class AddressError extends WireError {
  name = 'AddressError'
}

export class HashMismatchError extends WireError {
  name = 'HashMismatchError'
}

export class RecordError extends WireError {
  name = 'RecordError'
}

// ---- CAS addresses (H2) ----

export function addressOf (data) {
  return CID.createV1(raw.code, sha256.digest(data)).bytes
}

// parse a binary CAS address; only CIDv1 / raw / sha2-256 is accepted, as rlp2p does
export function parseAddress (address) {
  if (!(address instanceof Uint8Array) || address.byteLength !== ADDRESS_SIZE) {
    throw new AddressError(`a CAS address is ${ADDRESS_SIZE} bytes, got ${address?.byteLength ?? '?'}`)
  }
  let cid
  try {
    cid = CID.decode(address)
  } catch (err) {
    throw new AddressError(`not a CID: ${err.message}`)
  }
  if (cid.version !== 1 || cid.code !== raw.code) {
    throw new AddressError(`expected a CIDv1 with the raw codec, got v${cid.version} codec 0x${cid.code.toString(16)}`)
  }
  if (cid.multihash.code !== sha256.code || cid.multihash.size !== 32) {
    throw new AddressError(`expected a sha2-256 multihash, got code 0x${cid.multihash.code.toString(16)}`)
  }
  return cid
}

export function addressText (address) {
  try {
    return parseAddress(address).toString()
  } catch {
    return Buffer.from(address ?? []).toString('hex')
  }
}

// throw HashMismatchError unless `data` is what `address` names
export function verifyBlock (address, data) {
  const cid = parseAddress(address)
  if (!bytesEqual(sha256.digest(data).digest, cid.multihash.digest)) {
    throw new HashMismatchError(`block does not hash to ${cid}`)
  }
}

// ---- MVDS messages (H1) ----

// the MVDS message id: sha256("MESSAGE_ID" + group_id + timestamp as int64 little-endian + body)
export function messageId (groupId, timestamp, body) {
  const ts = Long.fromValue(timestamp)
  return new Uint8Array(createHash('sha256')
    .update('MESSAGE_ID')
    .update(groupId)
    .update(Uint8Array.from(ts.toBytesLE()))
    .update(body)
    .digest())
}

export function decodeMessage (data) {
  if (data.byteLength > LIMITS.maxMessage) {
    throw new WireError(`message of ${data.byteLength} bytes is over ${LIMITS.maxMessage}`)
  }
  const m = decode(pb.Message, data)
  const groupId = bytesOf(m.group_id)
  const body = bytesOf(m.body)
  const timestamp = Long.fromValue(m.timestamp ?? 0)
  return { group_id: groupId, timestamp, body, id: messageId(groupId, timestamp, body) }
}

// ---- records ----

// the standard IPNS routing key of a log name: "/ipns/" + binary multihash of the peer id
export function routingKeyOf (name) {
  if (typeof name !== 'string' || name.length === 0 || name.length > LIMITS.maxName) {
    throw new RecordError(`a log name is a string of 1 to ${LIMITS.maxName} characters`)
  }
  let peerId
  try {
    peerId = peerIdFromString(name)
  } catch (err) {
    throw new RecordError(`not a peer id: ${name.slice(0, 80)}: ${err.message}`)
  }
  if (peerId.type !== 'Ed25519') {
    throw new RecordError(`log names are Ed25519 peer ids, got ${peerId.type}`)
  }
  return multihashToIPNSRoutingKey(peerId.toMultihash())
}

// The head address in an IPNS value written by rlp2p: "/ipfs/<CAS address in any multibase>".
export function parseHeadValue (value) {
  if (typeof value !== 'string' || !value.startsWith('/ipfs/')) {
    throw new RecordError(`value is not an /ipfs/ path: ${String(value).slice(0, 80)}`)
  }
  let cid
  try {
    cid = CID.parse(value.slice('/ipfs/'.length))
  } catch (err) {
    throw new RecordError(`value is not /ipfs/<CID>: ${err.message}`)
  }
  try {
    parseAddress(cid.bytes)
  } catch (err) {
    throw new RecordError(`value is not /ipfs/<CAS address>: ${err.message}`)
  }
  return cid.bytes
}

// Validate `bytes` as the record of log `name` with js `ipns` (signature V2, the CBOR data
// against the V1 fields, expiry, size, the key against the routing key), then read it as rlp2p
// does. Throws RecordError (with the ipns error's name in the message) when it is not valid.
export async function verifyRecord (name, bytes) {
  if (!(bytes instanceof Uint8Array)) throw new RecordError('a record is bytes')
  if (bytes.byteLength > LIMITS.maxRecord) {
    throw new RecordError(`record of ${bytes.byteLength} bytes is over ${LIMITS.maxRecord}`)
  }
  const routingKey = routingKeyOf(name)
  try {
    await ipnsValidator(routingKey, bytes)
  } catch (err) {
    throw new RecordError(`invalid record for ${name}: ${err.name}: ${err.message}`)
  }
  const record = unmarshalIPNSRecord(bytes)
  const head = parseHeadValue(record.value)
  return { name, raw: bytes, record, head, sequence: BigInt(record.sequence), validity: record.validity }
}

// the IPNS selector's order: higher sequence, then later validity
export function betterRecord (a, b) {
  if (a.sequence !== b.sequence) return a.sequence > b.sequence
  return validityMs(a.validity) > validityMs(b.validity)
}

function validityMs (text) {
  const t = Date.parse(text)
  return Number.isNaN(t) ? 0 : t
}

// a JSON-safe description of a parsed IPNS record
export function describeRecord (record) {
  return {
    value: record.value,
    sequence: String(record.sequence),
    validity: record.validity,
    validityType: record.validityType,
    ttl_ns: record.ttl == null ? null : String(record.ttl),
    v1: 'signatureV1' in record,
    pubKey_embedded: record.pubKey != null
  }
}

export function bytesEqual (a, b) {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}

export function toHex (bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}
