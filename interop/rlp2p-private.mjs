// Private logs, read side, written from the description in docs/design.md ("Private logs"):
// a capability `rlp2p1:<name>:<base32(epoch u16 BE | secret 32)>` opens sealed blocks
// `version (1) | epoch (2 BE) | nonce (12) | AES-256-GCM-SIV ciphertext`, the 3-byte header as
// associated data; a pair's localHash is HMAC-SHA256(id key, MVDS id). Every page of a private
// log carries RemoteLog.sealed = 1.
//
// Keys: epoch e-1's secret is sha256("rlp2p/private/chain" | s_e); from an epoch secret,
// HKDF-SHA256 (no salt) with info "rlp2p/private/v1/<label>/<name>" gives the content key
// (label "content") and the id key ("id"). AES-GCM-SIV comes from @noble/ciphers (WebCrypto and
// node:crypto on Node 20 have no GCM-SIV).
import { createHash, createHmac, hkdfSync } from 'node:crypto'
import { gcmsiv } from '@noble/ciphers/aes.js'
import { LIMITS, WireError, bytesEqual, decodeMessage } from './rlp2p-wire.mjs'

export const CAPABILITY_PREFIX = 'rlp2p1'
export const SEAL_VERSION = 1
const HEADER_SIZE = 3
const NONCE_SIZE = 12
const TAG_SIZE = 16
const SECRET_SIZE = 32
const MAX_EPOCHS = 1024
const MAX_CAPABILITY = 200
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

export class CapabilityError extends Error {
  constructor (message) { super(message); this.name = 'CapabilityError' }
}
export class CapabilityRequired extends CapabilityError {
  constructor (message) { super(message); this.name = 'CapabilityRequired' }
}
export class WrongCapability extends CapabilityError {
  constructor (message) { super(message); this.name = 'WrongCapability' }
}
export class CapabilityOutdated extends CapabilityError {
  constructor (message) { super(message); this.name = 'CapabilityOutdated' }
}

function base32Decode (text) {
  let bits = 0
  let value = 0
  const out = []
  for (const c of text) {
    const v = B32.indexOf(c)
    if (v < 0) throw new CapabilityError('the capability\'s key is not lower-case base32')
    value = (value << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((value >> bits) & 0xff)
    }
  }
  return Uint8Array.from(out)
}

export function parseCapability (text) {
  if (typeof text !== 'string' || text.length > MAX_CAPABILITY) throw new CapabilityError('not a capability')
  const parts = text.trim().split(':')
  if (parts.length !== 3 || parts[0] !== CAPABILITY_PREFIX) throw new CapabilityError(`a capability reads ${CAPABILITY_PREFIX}:<name>:<key>`)
  const raw = base32Decode(parts[2])
  if (raw.byteLength !== 2 + SECRET_SIZE) throw new CapabilityError(`the capability's key is ${raw.byteLength} bytes`)
  const epoch = (raw[0] << 8) | raw[1]
  if (epoch >= MAX_EPOCHS) throw new CapabilityError(`epoch ${epoch} is over ${MAX_EPOCHS - 1}`)
  return { name: parts[1], epoch, secret: raw.slice(2) }
}

function hkdf (secret, label, name) {
  const info = Buffer.from(`rlp2p/private/v1/${label}/${name}`, 'ascii')
  return new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), info, 32))
}

export class Keyring {
  constructor ({ name, epoch, secret }) {
    this.name = name
    this.epoch = epoch
    this.secret = secret
    this.keys = new Map()
  }

  epochKeys (epoch) {
    let keys = this.keys.get(epoch)
    if (keys == null) {
      let s = this.secret
      for (let i = 0; i < this.epoch - epoch; i++) {
        s = new Uint8Array(createHash('sha256').update('rlp2p/private/chain').update(s).digest())
      }
      keys = { content: hkdf(s, 'content', this.name), id: hkdf(s, 'id', this.name) }
      this.keys.set(epoch, keys)
    }
    return keys
  }

  // open a sealed block and check the keyed id: the message, as decodeMessage returns it
  open (block, localHash) {
    if (block.byteLength > LIMITS.maxMessage) throw new WireError(`sealed message of ${block.byteLength} bytes is over ${LIMITS.maxMessage}`)
    if (block.byteLength < HEADER_SIZE + NONCE_SIZE + TAG_SIZE) throw new WireError('a sealed message is too short')
    const version = block[0]
    const epoch = (block[1] << 8) | block[2]
    if (version !== SEAL_VERSION) throw new WireError(`sealed message version ${version}`)
    if (epoch > this.epoch) throw new CapabilityOutdated(`sealed under epoch ${epoch}; the capability reads up to ${this.epoch}`)
    const keys = this.epochKeys(epoch)
    const header = block.subarray(0, HEADER_SIZE)
    const nonce = block.subarray(HEADER_SIZE, HEADER_SIZE + NONCE_SIZE)
    let data
    try {
      data = gcmsiv(keys.content, nonce, header).decrypt(block.subarray(HEADER_SIZE + NONCE_SIZE))
    } catch {
      throw new WrongCapability(`the capability for ${this.name} does not open a message of epoch ${epoch}`)
    }
    const message = decodeMessage(data)
    const keyed = new Uint8Array(createHmac('sha256', keys.id).update(message.id).digest())
    if (!bytesEqual(keyed, localHash)) throw new WireError('the message\'s keyed id is not localHash')
    return message
  }
}
