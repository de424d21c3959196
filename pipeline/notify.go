package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// KindStreakEnded is the Kind of the Notification that ends a notified auth-failure streak: an
// authenticated request arrived again. It has no notifications row; the alert store resolves the
// webhook's open auth-failure alert with it.
const KindStreakEnded = "auth_failures.resolved"

// Notification is one auth-failure alert as POSTed to the project's notification URL: its
// notifications row (chstore.NotificationRow) without the Kafka position; or the end of one
// (KindStreakEnded).
type Notification struct {
	ProjectID int64     `json:"project_id"`
	WebhookID string    `json:"webhook_id"`
	ID        uuid.UUID `json:"notification_id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
	Message   string    `json:"message"`
}

func notificationOf(r *chstore.NotificationRow) Notification {
	return Notification{ProjectID: int64(r.ProjectID), WebhookID: r.WebhookID, ID: r.ID, Kind: r.Kind,
		CreatedAt: r.CreatedAt, Message: r.Message}
}

// Notifier hands an auth-failure notification on outside ClickHouse, after its notifications row is
// written, from a goroutine of its own (never the consume loop; a full queue drops the hand-over,
// counted). In production it is the alert store (internal/alert, wired by internal/compose), which
// records the alert once per notification id and queues a signed notification that the admin
// processes deliver with retries; Notify is then one PostgreSQL transaction.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// URLSource returns a project's notification URL ("" for none): the projects.notification_url column
// in production.
type URLSource func(ctx context.Context, projectID int64) (string, error)

// HTTPNotifier POSTs a notification as JSON to the project's notification URL, once, unsigned: a
// Notifier for tests and embedders without the alert queue.
type HTTPNotifier struct {
	URLs   URLSource
	Client *http.Client
}

// Notify POSTs n; a project without a URL is skipped. A non-2xx answer is an error.
func (h *HTTPNotifier) Notify(ctx context.Context, n Notification) error {
	url, err := h.URLs(ctx, n.ProjectID)
	if err != nil {
		return fmt.Errorf("notification url of project %d: %w", n.ProjectID, err)
	}
	if url == "" {
		return nil
	}
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notification request for project %d: %w", n.ProjectID, err)
	}
	req.Header.Set("Content-Type", "application/json")
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("post notification for project %d: %w", n.ProjectID, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post notification for project %d: status %d", n.ProjectID, resp.StatusCode)
	}
	return nil
}

// notify delivers queued notifications until ctx is done.
func (p *Pipeline) notify(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-p.notes:
			nctx, cancel := context.WithTimeout(ctx, p.cfg.NotificationTimeout)
			err := p.deps.Notifier.Notify(nctx, n)
			cancel()
			if err != nil {
				p.m.notifyErrors.Inc()
				p.log.Warn("notification not delivered", "webhook_id", n.WebhookID, "project_id", n.ProjectID, "err", err)
			}
		}
	}
}
