package pgdb

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// ConfigChannel is the NOTIFY channel on which the migrations' triggers announce every change to a
// webhook, an event, a user or a device. Payloads: "webhook:<public id>", "event:<id>",
// "user:<project id>:<user id>", "device:<project id>:<hwid>", "project:<project id>" (its phone region).
const ConfigChannel = "inlet_config"

// Subscriber receives change notifications. Changed is called with each payload that starts with the
// prefix it subscribed to (the prefix included). Resync is called every time the listener (re)connects:
// notifications sent while it was disconnected are lost, so everything cached must be treated as stale.
// Both run on the listener's goroutine and must not block.
type Subscriber interface {
	Changed(payload string)
	Resync()
}

// Notifier is one LISTEN connection per process, fanning change notifications out to the caches that
// subscribed. It reconnects by itself after PostgreSQL comes back.
type Notifier struct {
	dsn string
	log *slog.Logger

	mu   sync.RWMutex
	subs []subscription
}

type subscription struct {
	prefix string
	sub    Subscriber
}

// NewNotifier listens on ConfigChannel using its own connection to dsn (not a pool connection: LISTEN
// holds it for ever).
func NewNotifier(dsn string, log *slog.Logger) *Notifier {
	return &Notifier{dsn: dsn, log: log}
}

// Subscribe registers s for payloads starting with prefix (e.g. "webhook:"). Call before Run.
func (n *Notifier) Subscribe(prefix string, s Subscriber) {
	n.mu.Lock()
	n.subs = append(n.subs, subscription{prefix, s})
	n.mu.Unlock()
}

// Run listens until ctx is done, reconnecting every second while PostgreSQL is unreachable.
func (n *Notifier) Run(ctx context.Context) error {
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return pgx.Connect(cctx, n.dsn)
		},
		LogError: func(ctx context.Context, err error) {
			if ctx.Err() == nil {
				n.log.Warn("config listener", "err", err)
			}
		},
		ReconnectDelay: time.Second,
	}
	l.Handle(ConfigChannel, n)
	err := l.Listen(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// HandleNotification implements pgxlisten.Handler.
func (n *Notifier) HandleNotification(_ context.Context, note *pgconn.Notification, _ *pgx.Conn) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, s := range n.subs {
		if strings.HasPrefix(note.Payload, s.prefix) {
			s.sub.Changed(note.Payload)
		}
	}
	return nil
}

// HandleBacklog implements pgxlisten.BacklogHandler: called after each (re)connect, once LISTEN is in
// place, so that nothing changed in between goes unnoticed.
func (n *Notifier) HandleBacklog(context.Context, string, *pgx.Conn) error {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, s := range n.subs {
		s.sub.Resync()
	}
	return nil
}
