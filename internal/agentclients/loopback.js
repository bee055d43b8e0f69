// Keeps a test script on this machine: every connection and fetch to a host
// that is not a loopback address is refused before a socket opens.
//
//   require('./loopback.js').onlyLoopback(rewrite)
//
// rewrite(url) may return a loopback URL to send a request to instead (for
// calls a client makes to Microsoft's hosts that a local server answers), or
// undefined to leave the URL as it is.
'use strict'

const net = require('node:net')

const loopback = new Set(['127.0.0.1', '::1', '[::1]', 'localhost'])

function onlyLoopback (rewrite = () => undefined) {
  const connect = net.Socket.prototype.connect
  net.Socket.prototype.connect = function (...args) {
    let opts = args[0]
    if (Array.isArray(opts)) opts = opts[0]
    const host = typeof opts === 'object' && opts !== null ? opts.host : args[1]
    if (typeof opts === 'object' && opts !== null && opts.path) return connect.apply(this, args)
    if (host !== undefined && !loopback.has(host)) {
      throw new Error(`refused a connection to ${host}: only loopback is allowed`)
    }
    return connect.apply(this, args)
  }

  const fetch = globalThis.fetch
  globalThis.fetch = async (input, init) => {
    let u = new URL(typeof input === 'string' || input instanceof URL ? input : input.url)
    u = rewrite(u) ?? u
    if (!loopback.has(u.hostname)) {
      throw new Error(`refused a request to ${u.host}: only loopback is allowed`)
    }
    return fetch(u, init)
  }
}

module.exports = { onlyLoopback }
