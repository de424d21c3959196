package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/webhook"
)

const secretsUsage = `usage: inlet secrets reseal [-batch N]
       re-encrypt every stored webhook secret under secrets.master_key, N webhooks per transaction
       (default 500); previous_master_keys open the rest. Safe to run while Inlet serves, and again.`

// errUnopened makes `inlet secrets reseal` exit 1 after it has resealed everything it could.
var errUnopened = errors.New("some secrets were opened by no configured master key: keep previous_master_keys until they are dealt with (see above)")

// secretsCmd runs the secrets subcommands against PostgreSQL directly.
func secretsCmd(ctx context.Context, cfg *config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "reseal" {
		return usageError{secretsUsage}
	}
	fs := flag.NewFlagSet("inlet secrets reseal", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	batch := fs.Int("batch", webhook.DefaultResealBatch, "webhook rows per transaction")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *batch < 1 || *batch > webhook.MaxResealBatch {
		return usageError{fmt.Sprintf("-batch is 1..%d and nothing follows it\n%s", webhook.MaxResealBatch, secretsUsage)}
	}
	fmt.Fprintf(stdout, "sealing under master key %s", keyID(cfg.Secrets.Key()))
	for i, k := range cfg.Secrets.PreviousKeys() {
		if i == 0 {
			fmt.Fprint(stdout, "; opening with previous keys")
		}
		fmt.Fprintf(stdout, " %s", keyID(k))
	}
	fmt.Fprintln(stdout)

	stores, err := compose.OpenStores(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer stores.Close()
	r, err := stores.Webhooks.ResealSecrets(ctx, *batch, func(r webhook.ResealReport) {
		fmt.Fprintf(stdout, "  %d webhooks read, %d secrets resealed\n", r.Rows, r.Resealed)
	})
	fmt.Fprintf(stdout, "%d webhooks: %d secrets resealed, %d already under the current key, %d not opened\n",
		r.Rows, r.Resealed, r.Current, r.Failed)
	for _, f := range r.Failures {
		why := "damaged, or sealed under a key that is not configured"
		if errors.Is(f.Err, secret.ErrUnknownKey) {
			why = "sealed under a key that is not configured"
		}
		fmt.Fprintf(stdout, "  not opened: webhook %s %s: %s\n", f.PublicID, f.Column, why)
	}
	if r.Failed > len(r.Failures) {
		fmt.Fprintf(stdout, "  … and %d more\n", r.Failed-len(r.Failures))
	}
	if err != nil {
		return err
	}
	pr, err := stores.Alerts.ResealProjectSecrets(ctx)
	fmt.Fprintf(stdout, "project signing secrets and masking keys: %d resealed, %d already under the current key, %d not opened\n",
		pr.Resealed, pr.Current, pr.Failed)
	for _, f := range pr.Failures {
		fmt.Fprintf(stdout, "  not opened: %s\n", f)
	}
	if err != nil {
		return err
	}
	if r.Failed > 0 || pr.Failed > 0 {
		return errUnopened
	}
	return nil
}

// keyID prints a master key's id, as ciphertexts carry it.
func keyID(key []byte) string {
	id := secret.KeyID(key)
	return hex.EncodeToString(id[:])
}
