package webhook

import (
	"slices"
	"strings"

	"github.com/inlet-dev/inlet/internal/verify"
)

// Handshake is a challenge a sender makes before it delivers, to check that the URL is its receiver.
// The edge answers it from the cached config, without Kafka.
type Handshake string

// The handshakes.
const (
	// HandshakeNone: the sender delivers without one.
	HandshakeNone Handshake = ""
	// HandshakeSlack: Slack's Events API url_verification: a signed POST of
	// {"type":"url_verification","challenge":…}, answered 200 with the challenge.
	HandshakeSlack Handshake = "slack_url_verification"
	// HandshakeMeta: Meta's subscription check: GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…,
	// answered 200 with hub.challenge when hub.verify_token is the webhook's handshake token.
	HandshakeMeta Handshake = "meta_hub_challenge"
	// HandshakeZoom: Zoom's endpoint.url_validation CRC: a signed POST of
	// {"event":"endpoint.url_validation","payload":{"plainToken":…}}, answered 200 with plainToken and
	// encryptedToken = hex(HMAC-SHA256(secret token, plainToken)).
	HandshakeZoom Handshake = "zoom_url_validation"
)

// Sender is a kind of service that delivers webhooks, as the Connect step offers it: how it proves who
// it is, which of its headers are worth keeping, where its delivery id is, the handshake it makes, and
// where in its admin the user pastes the URL and finds the secret. Picking a sender fills a webhook's
// verification, kept headers and dedup; the user may still change them.
type Sender struct {
	Name         string        `json:"name"`
	Title        string        `json:"title"`
	Verification verify.Config `json:"verification"`
	// Headers are kept with every record (shown in the activity log, mappable as headers["Name"]).
	Headers []string `json:"headers"`
	// Dedup is where the sender's delivery id is; its zero value when the sender has none.
	Dedup     Dedup     `json:"dedup"`
	Handshake Handshake `json:"handshake,omitempty"`
	// SecretHelp says where the user finds the secret to paste (or that Inlet makes it).
	SecretHelp string `json:"secret_help"`
	// URLHelp says where in the sender's admin the webhook URL goes.
	URLHelp string `json:"url_help"`
	// FormBody is true for senders that post application/x-www-form-urlencoded bodies.
	FormBody bool `json:"form_body,omitempty"`
}

// SenderInlet is the default sender: anything that can set "Authorization: Bearer whsec_…".
const SenderInlet = "inlet"

func hmacPreset(name string) verify.Config {
	return verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: name}}
}

// senders is the catalog, by name.
var senders = map[string]Sender{
	SenderInlet: {
		Title:      "Any service (Bearer secret)",
		SecretHelp: "Inlet makes the secret; the sender presents it as \"Authorization: Bearer whsec_…\".",
		URLHelp:    "Wherever the service takes a webhook URL and a custom Authorization header.",
	},
	"basic": {
		Title:        "Any service (HTTP Basic)",
		Verification: verify.Config{Mode: verify.ModeBasic, Username: "inlet"},
		SecretHelp:   "Inlet makes the password (or paste your own); the URL gets user:password@.",
		URLHelp:      "Wherever the service takes a webhook URL with credentials.",
	},
	"token": {
		Title:        "Any service (token in the URL)",
		Verification: verify.Config{Mode: verify.ModeToken},
		SecretHelp:   "Inlet makes the token; it goes in the URL's query. The weakest mode: the URL reaches proxies' logs.",
		URLHelp:      "Paste the whole URL, token included, where the service takes a webhook URL.",
	},
	"hmac": {
		Title:        "Any service (custom HMAC)",
		Verification: verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Header: "X-Signature", Algorithm: verify.SHA256, Encoding: verify.Hex}},
		SecretHelp:   "Paste the signing secret the service shows, and describe its signature header.",
		URLHelp:      "Wherever the service takes a webhook URL.",
	},
	"shopify": {
		Title:        "Shopify",
		Verification: hmacPreset("shopify"),
		Headers:      []string{"X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id", "X-Shopify-Event-Id", "X-Shopify-Triggered-At", "X-Shopify-API-Version"},
		Dedup:        Dedup{Key: "header:X-Shopify-Webhook-Id"},
		SecretHelp:   "Settings → Notifications → Webhooks: the key under \"Your webhooks will be signed with\" (an app's client secret for app webhooks).",
		URLHelp:      "Settings → Notifications → Webhooks → Create webhook: pick the event, JSON, and paste the URL.",
	},
	"stripe": {
		Title:        "Stripe",
		Verification: hmacPreset("stripe"),
		Dedup:        Dedup{Key: "body:id"},
		SecretHelp:   "Developers → Webhooks → your endpoint → Signing secret (whsec_…).",
		URLHelp:      "Developers → Webhooks → Add endpoint: paste the URL and pick the events.",
	},
	"github": {
		Title:        "GitHub",
		Verification: hmacPreset("github"),
		Headers:      []string{"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID"},
		Dedup:        Dedup{Key: "header:X-GitHub-Delivery"},
		SecretHelp:   "Choose a secret and type the same in Settings → Webhooks → Secret.",
		URLHelp:      "Repository or organisation Settings → Webhooks → Add webhook: Payload URL, content type application/json.",
	},
	"woocommerce": {
		Title:        "WooCommerce",
		Verification: hmacPreset("woocommerce"),
		Headers:      []string{"X-WC-Webhook-Topic", "X-WC-Webhook-Resource", "X-WC-Webhook-Event", "X-WC-Webhook-ID", "X-WC-Webhook-Delivery-ID", "X-WC-Webhook-Source"},
		Dedup:        Dedup{Key: "header:X-WC-Webhook-Delivery-ID"},
		SecretHelp:   "WooCommerce → Settings → Advanced → Webhooks → your webhook → Secret.",
		URLHelp:      "WooCommerce → Settings → Advanced → Webhooks → Add webhook: Delivery URL.",
	},
	"hubspot": {
		Title:        "HubSpot",
		Verification: hmacPreset("hubspot_v3"),
		SecretHelp:   "Your app's settings → Auth → Client secret.",
		URLHelp:      "Your app's settings → Webhooks → Target URL.",
	},
	"slack": {
		Title:        "Slack",
		Verification: hmacPreset("slack"),
		Headers:      []string{"X-Slack-Retry-Num", "X-Slack-Retry-Reason"},
		Dedup:        Dedup{Key: "body:event_id"},
		Handshake:    HandshakeSlack,
		SecretHelp:   "api.slack.com/apps → your app → Basic Information → App Credentials → Signing Secret.",
		URLHelp:      "Your app → Event Subscriptions → Request URL (Slack checks it at once: Inlet answers the challenge).",
	},
	"standard_webhooks": {
		Title:        "Standard Webhooks / Svix",
		Verification: hmacPreset("standard_webhooks"),
		Headers:      []string{"webhook-id", "webhook-timestamp"},
		Dedup:        Dedup{Key: "header:webhook-id"},
		SecretHelp:   "The endpoint's signing secret in the sender's portal (whsec_…).",
		URLHelp:      "The sender's portal → Endpoints → Add endpoint: Endpoint URL.",
	},
	"meta": {
		Title:        "Meta (Facebook, Instagram, WhatsApp)",
		Verification: hmacPreset("meta"),
		Handshake:    HandshakeMeta,
		SecretHelp:   "developers.facebook.com → your app → App settings → Basic → App secret; the verify token is yours to choose.",
		URLHelp:      "Your app → Webhooks (or WhatsApp → Configuration): Callback URL and Verify token (Meta checks them at once).",
	},
	"twilio": {
		Title:        "Twilio",
		Verification: hmacPreset("twilio"),
		Headers:      []string{"I-Twilio-Idempotency-Token"},
		Dedup:        Dedup{Key: "header:I-Twilio-Idempotency-Token"},
		SecretHelp:   "console.twilio.com → Account info → Auth Token (the account's primary auth token signs its webhooks).",
		URLHelp:      "Phone Numbers → Active numbers → your number → Messaging (or Voice) configuration → \"A message comes in\": Webhook, HTTP POST, paste the URL exactly (Twilio signs the URL it calls; the edge's public_url must be its scheme and host).",
		FormBody:     true,
	},
	"zoom": {
		Title:        "Zoom",
		Verification: hmacPreset("zoom"),
		Handshake:    HandshakeZoom,
		SecretHelp:   "marketplace.zoom.us → your app → Features → Access → Secret Token.",
		URLHelp:      "Your app → Features → Event Subscriptions → Event notification endpoint URL (Validate: Inlet answers the check).",
	},
}

func init() {
	for name, s := range senders {
		s.Name = name
		if s.Headers == nil {
			s.Headers = []string{}
		}
		senders[name] = s
	}
}

// LookupSender returns the sender of that name.
func LookupSender(name string) (Sender, bool) {
	s, ok := senders[name]
	return s, ok
}

// Senders lists the catalog: Inlet's own modes first, then the providers by title.
func Senders() []Sender {
	out := make([]Sender, 0, len(senders))
	for _, s := range senders {
		out = append(out, s)
	}
	generic := func(s Sender) int {
		return slices.Index([]string{SenderInlet, "basic", "token", "hmac"}, s.Name)
	}
	slices.SortFunc(out, func(a, b Sender) int {
		ga, gb := generic(a), generic(b)
		switch {
		case ga >= 0 && gb >= 0:
			return ga - gb
		case ga >= 0:
			return -1
		case gb >= 0:
			return 1
		}
		return strings.Compare(a.Title, b.Title)
	})
	return out
}
