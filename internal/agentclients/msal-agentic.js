// Runs the agent legs of Microsoft's MsalTokenProvider (@microsoft/agents-hosting)
// against a local identity provider and prints the tokens it obtained as JSON:
//
//   node msal-agentic.js '<settings JSON>'
//
// settings: {authority, tenantId, blueprintId, credential, agentId, agentUserId, scopes}, where
// credential holds the blueprint's credential settings of MsalTokenProvider
// ({clientSecret}, {certPemFile, certKeyFile} or {WIDAssertionFile}).
// The process may only connect to loopback addresses: anything else is refused
// before a socket opens, and MSAL's instance discovery (which Microsoft's code
// sends to login.microsoftonline.com) is answered by the local identity
// provider instead.
'use strict'

const settings = JSON.parse(process.argv[2])
const local = new URL(settings.authority)

require('./loopback.js').onlyLoopback((u) => {
  if (u.hostname === 'login.microsoftonline.com' && u.pathname === '/common/discovery/instance') {
    u.protocol = local.protocol
    u.host = local.host
    return u
  }
})

const { MsalTokenProvider } = require('@microsoft/agents-hosting')

async function main () {
  const provider = new MsalTokenProvider({
    clientId: settings.blueprintId,
    tenantId: settings.tenantId,
    authority: settings.authority,
    ...settings.credential
  })
  const out = {}
  out.application = await provider.getAgenticApplicationToken(settings.tenantId, settings.agentId)
  out.instance = await provider.getAgenticInstanceToken(settings.tenantId, settings.agentId)
  out.user = await provider.getAgenticUserToken(settings.tenantId, settings.agentId, settings.agentUserId, settings.scopes)
  process.stdout.write(JSON.stringify(out))
}

main().catch((err) => {
  process.stderr.write(`msal-agentic: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
