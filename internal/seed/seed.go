// Package seed is the product seed's worked example — the sample payload of a checkout, the
// CheckoutSuccess event with typed attributes, and the webhook that identifies users by user_id and maps
// email ← email_address, total ← price, order_id ← order_number — shared by the demo project of `make
// run` and the bench suite, so that both show the same thing. Ensure seeds a project with it, as both
// do.
package seed

import (
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Sample is the seed's sample payload, compact.
const Sample = `{"user_id":"12345","email_address":"jane@example.com","mobile":"+15551234567","purchase_date":"2024-03-15","order_number":"ORD-001","price":99.99,"payment_state":"success"}`

// UserID is the subscriber the sample is about.
const UserID = "12345"

// Event is the CheckoutSuccess event's definition under the given name.
func Event(name, description string) webhook.EventInput {
	return webhook.EventInput{
		Name:        name,
		Description: description,
		Attributes: []webhook.Attribute{
			{Name: "email", Type: webhook.TypeString},
			{Name: "total", Type: webhook.TypePrice},
			{Name: "order_id", Type: webhook.TypeString},
			{Name: "purchase_date", Type: webhook.TypeDate},
			{Name: "payment_state", Type: webhook.TypeString},
		},
	}
}

// Webhook is the seed's webhook firing event: identify by user_id, every attribute of Event mapped.
func Webhook(name, event, sample string) webhook.WebhookInput {
	return webhook.WebhookInput{
		Name:      name,
		EventName: event,
		Identify:  webhook.Identify{Kind: identify.ByUserID, Field: "user_id"},
		Mappings: []webhook.Mapping{
			{Attribute: "email", Field: "email_address"},
			{Attribute: "total", Field: "price"},
			{Attribute: "order_id", Field: "order_number"},
			{Attribute: "purchase_date", Field: "purchase_date"},
			{Attribute: "payment_state", Field: "payment_state"},
		},
		SamplePayload: sample,
	}
}
