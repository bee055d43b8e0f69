// Package docscheck holds the tests that keep the documentation true to the
// code. It has no code of its own; everything is in its _test.go files.
//
// The documents are README.md, CONTRIBUTING.md, docs/*.md and
// charts/obo-gateway/README.md. The tests check that:
//
//   - every relative link leads to a file or folder of the repository, and
//     every #anchor into a Markdown file to one of its headings (GitHub's
//     slugs);
//   - docs/configuration.md names every key the configuration decoder
//     accepts, as a dotted path with routes[] for list items
//     (routes[].path_prefix, cache.redis.url), and documents no other;
//   - docs/metrics.md names every metric the gateway registers, and no
//     document names one it does not;
//   - every test function and Go file a document cites (the promise → test
//     table of docs/security.md) exists;
//   - the README stays within 300 lines and opens with the two commands,
//     the demo and the test suite that .ci/run ends with.
package docscheck
