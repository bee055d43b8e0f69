package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
)

// A request builds the key of its user and scopes and calls Fetch, which
// runs the exchange only when no usable token B is cached.
func ExampleCache_Fetch() {
	c, err := cache.New(cache.Config{})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	key := cache.UserKey("tenant-id", "object-id", nil, cache.NormalizeScopes([]string{"User.Read", "https://graph.microsoft.com/Mail.Read"}))
	exchanges := 0
	exchange := func(context.Context) (*cache.Entry, error) {
		exchanges++
		now := time.Now()
		return cache.NewEntry(key, "token-b", "Bearer", now, now.Add(time.Hour), 0), nil
	}
	for range 3 {
		e, res, err := c.Fetch(context.Background(), key, exchange)
		if err != nil {
			panic(err)
		}
		fmt.Println(res, e.Credential())
	}
	fmt.Println("exchanges:", exchanges)
	// Output:
	// miss Bearer token-b
	// hit Bearer token-b
	// hit Bearer token-b
	// exchanges: 1
}

// Scopes are compared without regard to case or order, so both spellings
// share one cache entry.
func ExampleNormalizeScopes() {
	fmt.Println(cache.NormalizeScopes([]string{"User.Read", "openid", "user.read"}))
	// Output: openid user.read
}
