package ingestor_test

import (
	"context"
	"testing"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/ingestor"
	"github.com/inlet-dev/inlet/internal/compose"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// The config-plane tests of package ingestor run the ingestor as internal/compose assembles it, which a
// test inside the package cannot import (see ingestor.ComposeIngestor).
func init() { ingestor.ComposeIngestor = composeIngestor }

func composeIngestor(t *testing.T, ic ingestor.Config, cc webhook.CacheConfig) ingestor.Composed {
	t.Helper()
	pg, _ := testenv.Postgres(t)
	kcfg, _ := testenv.Kafka(t)
	cfg := config.Defaults()
	cfg.Postgres, cfg.Kafka, cfg.Ingestor, cfg.WebhookCache = pg, kcfg, ic, cc
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ing, err := compose.NewIngestor(ctx, &cfg, compose.Deps{Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ing.Close)
	stores, err := compose.OpenStores(ctx, &cfg, nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stores.Close)
	return ingestor.Composed{Serve: ing.Serve, Webhooks: stores.Webhooks, Pool: stores.Pool, Kafka: kcfg}
}
