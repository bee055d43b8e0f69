// Package rediscache is the token cache's optional second level: token B
// shared by the gateway replicas of one deployment through Redis (single
// node, Redis Cluster, or Azure Cache for Redis over TLS).
//
// A read of Redis reveals neither tokens nor users. Every value is sealed
// with AES-256-GCM under a key from the operator's key file, with the full
// cache key as additional data, so a value copied to another key does not
// open; Redis keys are an HMAC-SHA-256 of the cache key, so user ids do not
// appear either. Keys rotate: the newest key seals and names the Redis keys,
// every listed key opens.
//
// Redis is never on the critical path of availability: each operation has a
// budget of milliseconds, and after a failure the store reports misses
// without calling Redis until a pause has passed. A value that does not open
// or parse is deleted and counted.
package rediscache
