// Package compose is Inlet on one host with Docker Compose: compose.yaml (Kafka, ClickHouse, PostgreSQL,
// `inlet migrate`, the ingestor, pipeline and admin, Prometheus and Grafana), prometheus.yml and Grafana's
// provisioning. It has no code; its test loads compose.yaml with the Compose specification's own loader
// (compose-go), strictly, and checks each service's image, health check, start order and volumes, that
// every INLET_* variable it sets is a setting Inlet reads and that the settings they make are valid, and
// that Prometheus scrapes each process's internal listener.
package compose
