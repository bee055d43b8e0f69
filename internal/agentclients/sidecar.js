// Runs Microsoft's SidecarAuthProvider (@microsoft/agents-hosting) against a
// token API compatible with Microsoft's sidecar and prints what each call
// returned as JSON:
//
//   node sidecar.js '<settings JSON>'
//
// settings: {tenantId, agentId, agentUserId, agentUsername, appScope, userScopes}.
// The provider is configured as its documentation says, from the environment:
// SIDECAR_URL (the base URL) and connections__serviceConnection__settings__*
// (authType EntraAuthSideCar, scopes, retryCount); its downstream API names
// are the defaults, "default" and "agenticblueprint".
//
// The output has one member per call, {"value": …} or {"error": …}, so that
// one failed call does not hide the others: healthy (isHealthy), access
// (getAccessToken), application (getAgenticApplicationToken), instance
// (getAgenticInstanceToken), userById and userByName (getAgenticUserToken
// with the agent user's object id, then with its UPN).
// The process may only connect to loopback addresses.
'use strict'

require('./loopback.js').onlyLoopback()

const { loadAuthConfigFromEnv, defaultAuthProviderFactory, SidecarAuthProvider } = require('@microsoft/agents-hosting')

const settings = JSON.parse(process.argv[2])

async function main () {
  const provider = defaultAuthProviderFactory(loadAuthConfigFromEnv())
  if (!(provider instanceof SidecarAuthProvider)) {
    throw new Error(`the configuration chose ${provider.constructor.name}, not SidecarAuthProvider`)
  }
  const calls = {
    healthy: () => provider.isHealthy(),
    access: () => provider.getAccessToken(settings.appScope),
    application: () => provider.getAgenticApplicationToken(settings.tenantId, settings.agentId),
    instance: () => provider.getAgenticInstanceToken(settings.tenantId, settings.agentId),
    userById: () => provider.getAgenticUserToken(settings.tenantId, settings.agentId, settings.agentUserId, settings.userScopes),
    userByName: () => provider.getAgenticUserToken(settings.tenantId, settings.agentId, settings.agentUsername, settings.userScopes)
  }
  const out = {}
  for (const [name, call] of Object.entries(calls)) {
    try {
      out[name] = { value: await call() }
    } catch (err) {
      out[name] = { error: String(err && err.message ? err.message : err) }
    }
  }
  process.stdout.write(JSON.stringify(out))
}

main().catch((err) => {
  process.stderr.write(`sidecar: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
