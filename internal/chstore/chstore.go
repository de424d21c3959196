// Package chstore is Inlet's ClickHouse store: the SQL Inlet runs on ClickHouse, behind one API.
// Reader answers the admin API's and console's reads (summaries, activity entries, event histories,
// notifications). The tables are created by the migrations in internal/migrations/clickhouse; their
// columns are described for analysts in docs/clickhouse.md.
package chstore
