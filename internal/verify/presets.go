package verify

import (
	"slices"
	"time"
)

// The presets: each provider's scheme as its documentation and official libraries describe it. The
// tests check each against the provider's own library or a documented example (verify_test.go says
// which).
var presets = map[string]HMAC{
	// Shopify: base64 HMAC-SHA256 of the raw body, keyed by the app's client secret.
	"shopify": {
		Header: "X-Shopify-Hmac-Sha256", Algorithm: SHA256, Encoding: Base64, Signed: PartBody,
	},
	// Stripe: "Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>]" over "<t>.<body>"; several v1 during
	// a secret's roll; stripe-go's DefaultTolerance is 5 minutes.
	"stripe": {
		Header: "Stripe-Signature", Format: FormatStripe, Algorithm: SHA256, Encoding: Hex,
		Signed: PartTimestamp + "." + PartBody, Tolerance: 5 * time.Minute,
	},
	// GitHub: "X-Hub-Signature-256: sha256=<hex>" over the body (the SHA-1 X-Hub-Signature is legacy).
	"github": {
		Header: "X-Hub-Signature-256", Prefix: "sha256=", Algorithm: SHA256, Encoding: Hex, Signed: PartBody,
	},
	// WooCommerce: base64 HMAC-SHA256 of the body in X-WC-Webhook-Signature.
	"woocommerce": {
		Header: "X-WC-Webhook-Signature", Algorithm: SHA256, Encoding: Base64, Signed: PartBody,
	},
	// HubSpot v3: base64 HMAC-SHA256 of method + URI + body + timestamp, the timestamp in milliseconds
	// in X-HubSpot-Request-Timestamp; HubSpot rejects timestamps older than 5 minutes. The URI is the
	// full URL HubSpot called (https://host/path?query), so the Request must give that, with the
	// escapes HubSpot's docs list decoded ({hubspot_uri}).
	"hubspot_v3": {
		Header: "X-HubSpot-Signature-v3", TimestampHeader: "X-HubSpot-Request-Timestamp",
		TimestampUnit: Milliseconds, Algorithm: SHA256, Encoding: Base64,
		Signed: PartMethod + PartHubSpotURI + PartBody + PartTimestamp, Tolerance: 5 * time.Minute,
	},
	// Twilio: "X-Twilio-Signature: <base64 HMAC-SHA1>" of the full URL Twilio called followed by the
	// form body's parameters sorted by name, name + value each, keyed by the account's auth token.
	// Twilio signs no timestamp. (Its JSON bodies, signed through a bodySHA256 query parameter, are
	// not covered.)
	"twilio": {
		Header: "X-Twilio-Signature", Algorithm: SHA1, Encoding: Base64, Signed: PartURI + PartFormParams,
	},
	// Slack: "X-Slack-Signature: v0=<hex>" over "v0:<ts>:<body>", ts in X-Slack-Request-Timestamp
	// (seconds); Slack's docs say to reject requests more than 5 minutes old.
	"slack": {
		Header: "X-Slack-Signature", Prefix: "v0=", TimestampHeader: "X-Slack-Request-Timestamp",
		Algorithm: SHA256, Encoding: Hex, Signed: "v0:" + PartTimestamp + ":" + PartBody,
		Tolerance: 5 * time.Minute,
	},
	// Meta (Facebook, Instagram, WhatsApp): "X-Hub-Signature-256: sha256=<hex>" over the body, keyed
	// by the app secret; the same scheme as GitHub's, under Meta's name.
	"meta": {
		Header: "X-Hub-Signature-256", Prefix: "sha256=", Algorithm: SHA256, Encoding: Hex, Signed: PartBody,
	},
	// Zoom: "x-zm-signature: v0=<hex>" over "v0:<ts>:<body>", ts in x-zm-request-timestamp (seconds),
	// keyed by the app's secret token; Slack's scheme under Zoom's header names.
	"zoom": {
		Header: "x-zm-signature", Prefix: "v0=", TimestampHeader: "x-zm-request-timestamp",
		Algorithm: SHA256, Encoding: Hex, Signed: "v0:" + PartTimestamp + ":" + PartBody,
		Tolerance: 5 * time.Minute,
	},
	// Standard Webhooks (Svix): "webhook-signature: v1,<base64> [v1,<base64>…]" over
	// "<webhook-id>.<webhook-timestamp>.<body>", the key the base64 of a "whsec_…" secret; the
	// libraries' tolerance is 5 minutes either way.
	"standard_webhooks": {
		Header: "webhook-signature", Format: FormatStandard, TimestampHeader: "webhook-timestamp",
		IDHeader: "webhook-id", Algorithm: SHA256, Encoding: Base64,
		Signed:    PartID + "." + PartTimestamp + "." + PartBody,
		Tolerance: 5 * time.Minute, SecretFormat: SecretWhsecBase64,
	},
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Preset returns the scheme a preset stands for, with its defaults filled in, for display (the admin
// shows what a preset checks).
func Preset(name string) (HMAC, bool) {
	if _, ok := presets[name]; !ok {
		return HMAC{}, false
	}
	return HMAC{Preset: name}.resolved(), true
}
