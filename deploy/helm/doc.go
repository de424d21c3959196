// Package helm holds no code: its test renders the Helm chart in inlet/ with Helm's own Go SDK over the
// values in testdata/, decodes every manifest strictly into the Kubernetes API types, loads the settings
// the chart hands the processes through config.Load, and runs Helm's linter.
package helm
