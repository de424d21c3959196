// Package chstore is Inlet's ClickHouse store: the schema, the layout of every row written and every
// statement that the pipeline, the admin and `inlet migrate` run on ClickHouse, in one place.
//
// The schema is the versioned migrations in schema/*.sql, embedded and applied by Migrate;
// docs/clickhouse.md describes every column for analysts.
//
// Writer is the pipeline's side. It inserts one table's rows as one block (InsertActivity, InsertEvents
// and InsertNotifications of ActivityRow, EventRow and NotificationRow), reads back what a table holds
// of given Kafka partitions (HighWater, FiredAbove, StreakState), tells when inserts are no longer
// running on the server (AwaitQuery, and AwaitInserts for inserts named by InsertQueryID) and drops
// expired days (DropExpired). It decides nothing: when to insert, retry, wait or skip is the pipeline's
// (pipeline/sink.go), and so is the argument for exactly once.
//
// Reader is the admin API's side: summaries, activity entries, event histories and notifications, each
// scoped by project.
//
// Every statement runs on the ClickHouse that Debian ships (18.16) as well as on current releases. The
// connection is internal/chdb's.
package chstore
