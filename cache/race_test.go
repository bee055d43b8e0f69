//go:build race

package cache

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = true
