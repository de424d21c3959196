package admin

import (
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/alert"
	"github.com/inlet-dev/inlet/internal/domainerr"
)

// requireAlerts answers 503 when the server was built without the alert store.
func (a *api) requireAlerts() error {
	if a.alerts == nil {
		return domainerr.New(domainerr.ErrUnavailable, "alerts are not configured on this server")
	}
	return nil
}

// ruleInput is a rule as a client writes it.
type ruleInput struct {
	Name          string  `json:"name"`
	Kind          string  `json:"kind"`
	WebhookID     string  `json:"webhook_id"`
	Reason        string  `json:"reason"`
	Threshold     float64 `json:"threshold"`
	WindowMinutes int     `json:"window_minutes"`
	MinRequests   int64   `json:"min_requests"`
	Enabled       *bool   `json:"enabled"`
}

func (in ruleInput) rule() alert.Rule {
	return alert.Rule{Name: in.Name, Kind: in.Kind, WebhookID: in.WebhookID, Reason: in.Reason, Threshold: in.Threshold,
		WindowMinutes: in.WindowMinutes, MinRequests: in.MinRequests, Enabled: in.Enabled == nil || *in.Enabled}
}

func (a *api) listRules(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	rules, err := a.alerts.Rules(r.Context(), projectID(r.Context()))
	if err != nil {
		return 0, nil, err
	}
	if rules == nil {
		rules = []alert.Rule{}
	}
	return http.StatusOK, map[string]any{"rules": rules}, nil
}

func (a *api) createRule(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	var in ruleInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	rule, err := a.alerts.CreateRule(r.Context(), projectID(r.Context()), in.rule())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, rule, nil
}

func (a *api) getRule(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	rule, err := a.alerts.Rule(r.Context(), projectID(r.Context()), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rule, nil
}

func (a *api) putRule(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	var in ruleInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	rule, err := a.alerts.UpdateRule(r.Context(), projectID(r.Context()), id, in.rule())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rule, nil
}

func (a *api) deleteRule(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	id, err := pathID(r)
	if err != nil {
		return 0, nil, err
	}
	if err := a.alerts.DeleteRule(r.Context(), projectID(r.Context()), id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// listLimit reads ?limit= (1..alert.MaxListed; default 50).
func listLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > alert.MaxListed {
		return 0, domainerr.Invalid("limit", "must be 1..%d, got %q", alert.MaxListed, v)
	}
	return n, nil
}

func (a *api) listAlerts(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	limit, err := listLimit(r)
	if err != nil {
		return 0, nil, err
	}
	open := false
	switch s := r.URL.Query().Get("state"); s {
	case "", "all":
	case "firing":
		open = true
	default:
		return 0, nil, domainerr.Invalid("state", "must be firing or all, got %q", s)
	}
	as, err := a.alerts.Alerts(r.Context(), projectID(r.Context()), open, limit)
	if err != nil {
		return 0, nil, err
	}
	if as == nil {
		as = []alert.Alert{}
	}
	return http.StatusOK, map[string]any{"alerts": as}, nil
}

func (a *api) listDeliveries(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	limit, err := listLimit(r)
	if err != nil {
		return 0, nil, err
	}
	ds, err := a.alerts.Deliveries(r.Context(), projectID(r.Context()), limit)
	if err != nil {
		return 0, nil, err
	}
	if ds == nil {
		ds = []alert.Delivery{}
	}
	return http.StatusOK, map[string]any{"notifications": ds}, nil
}

func (a *api) getDelivery(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return 0, nil, domainerr.ErrNotFound
	}
	d, err := a.alerts.Delivery(r.Context(), projectID(r.Context()), id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

// signingSecret is the project's notification signing secret, as the Standard Webhooks libraries take
// it.
type signingSecret struct {
	SigningSecret string `json:"signing_secret"`
}

func (a *api) getSigningSecret(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	s, err := a.alerts.SigningSecret(r.Context(), projectID(r.Context()))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, signingSecret{s}, nil
}

func (a *api) rotateSigningSecret(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := a.requireAlerts(); err != nil {
		return 0, nil, err
	}
	s, err := a.alerts.RotateSigningSecret(r.Context(), projectID(r.Context()))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, signingSecret{s}, nil
}
