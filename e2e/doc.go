// Package e2e holds Inlet's end-to-end tests: Inlet as internal/compose assembles it — the ingestor, the
// pipeline and the admin server, exactly as the binary builds them — run in the test's process on its own
// listeners, PostgreSQL and ClickHouse databases and Kafka topics (set through the settings), and driven
// from outside: the console in Chromium (browser*_test.go), webhooks sent over HTTP to the edge. The
// package has no code besides its tests.
package e2e
