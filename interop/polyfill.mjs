// Node 20 has no Promise.withResolvers (it arrived in Node 22); libp2p's dependencies call it, and
// without it the node crashes, typically while stopping. Load with `node --import ./polyfill.mjs`.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}
