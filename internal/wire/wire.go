// Package wire is the contract between the ingestor and the pipeline: the record layout of the
// webhooks.requests and webhooks.events topics. The two components never import each other; they meet
// here.
//
// A webhooks.requests record has key = webhook public id, value = the raw request body exactly as
// received (empty when the edge kept no payload), and these headers.
package wire

import (
	"strconv"

	"github.com/google/uuid"
)

// Header keys of webhooks.requests records.
const (
	HeaderRequestID     = "inlet-request-id"        // UUIDv7, text form; time-sortable
	HeaderWebhookID     = "inlet-webhook-id"        // public id (also the record key)
	HeaderProjectID     = "inlet-project-id"        // decimal
	HeaderReceivedAt    = "inlet-received-at"       // Unix milliseconds, decimal
	HeaderConfigVersion = "inlet-config-version"    // decimal webhook version the edge authenticated against
	HeaderEdgeOutcome   = "inlet-edge-outcome"      // one of the Outcome values
	HeaderEdgeStatus    = "inlet-edge-status"       // HTTP status the edge answered, decimal
	HeaderBodyBytes     = "inlet-body-bytes"        // size of the body as received (the value may be truncated or empty); for a chunked body refused as too large, the limit + 1 (a lower bound: the rest is never read)
	HeaderTruncated     = "inlet-payload-truncated" // "1" when the value is not the whole body (a preview, or empty for payload_too_large), else "0"
	// HeaderEdgeDetail says in words why the edge refused the request, for the activity log's detail;
	// absent when the outcome says it all. On invalid_json: what is wrong and at which byte, as package
	// jsonvalid words it (`duplicate key "user_id" at byte 18`); on invalid_form and
	// unsupported_media_type likewise (package form's words, or the media type refused); on
	// auth_rejected the verification's result (verify.Result: "signature_mismatch",
	// "timestamp_outside_tolerance", "credentials_missing", …).
	HeaderEdgeDetail = "inlet-edge-detail"
	// HeaderContentType is the request's Content-Type as the sender sent it, when the body is a form
	// ("application/x-www-form-urlencoded", "multipart/form-data; boundary=…"); absent for JSON, the
	// default. The value is still the raw body: the pipeline maps over a JSON view of the form.
	HeaderContentType = "inlet-content-type"
	// HeaderSenderPrefix precedes the name of each sender header kept with the record, in the
	// webhook's spelling: "inlet-h-X-Shopify-Topic". Which headers are kept is the webhook's config
	// (its sender's and the user's list); Authorization, cookies and signature headers never are.
	HeaderSenderPrefix = "inlet-h-"
	// HeaderTraceParent is the W3C trace context (https://www.w3.org/TR/trace-context/#traceparent-header)
	// of the edge's span of the request, "00-<trace id>-<span id>-<flags>": the pipeline's spans of the
	// request are its children or link to it. Present only when tracing is on and the request was
	// sampled; the W3C name, so that any traced consumer of the topic reads it too.
	HeaderTraceParent = "traceparent"
)

// Bounds of the sender headers a record carries; the edge enforces them.
const (
	// MaxSenderHeaders is how many sender headers a webhook may keep.
	MaxSenderHeaders = 16
	// MaxSenderHeaderBytes bounds one kept value: a longer one is cut to this length (delivery ids,
	// topics and timestamps are far shorter).
	MaxSenderHeaderBytes = 1024
)

// Outcome is the edge's verdict on a request. Only accepted requests are processed further by the
// pipeline; the others are logged as failed with the outcome as the reason.
type Outcome string

// Edge outcomes that are appended to webhooks.requests.
const (
	OutcomeAccepted        Outcome = "accepted"
	OutcomeAuthRejected    Outcome = "auth_rejected"
	OutcomeWebhookDisabled Outcome = "webhook_disabled"
	OutcomeInvalidJSON     Outcome = "invalid_json"
	OutcomePayloadTooLarge Outcome = "payload_too_large"
	// OutcomeInvalidForm: a form body that breaks package form's rule (the detail says what and where).
	OutcomeInvalidForm Outcome = "invalid_form"
	// OutcomeUnsupportedMediaType: a body that is neither JSON nor a form, or a multipart form with a
	// file part (the detail says which).
	OutcomeUnsupportedMediaType Outcome = "unsupported_media_type"
)

// Failure reasons decided by the pipeline (business outcomes; the HTTP answer was 202).
const (
	ReasonIdentifierMissing     = "identifier_missing"
	ReasonUserNotFound          = "user_not_found"
	ReasonAttributeTypeMismatch = "attribute_type_mismatch"
	ReasonWebhookDeleted        = "webhook_deleted"
	// ReasonIdentifierInvalid: the identifier is longer than any user id, e-mail, phone or hwid can be
	// (the pipeline's max_identifier_bytes).
	ReasonIdentifierInvalid = "identifier_invalid"
	// ReasonAttributeTooLarge: one mapped attribute is over the pipeline's max_attribute_bytes.
	ReasonAttributeTooLarge = "attribute_too_large"
	// ReasonNumberOutOfRange: a number mapped to an integer, price or date has more digits, written
	// out, than the pipeline's max_number_digits (1e10000, 1e-40).
	ReasonNumberOutOfRange = "number_out_of_range"
	// ReasonEventTooLarge: the event to fire is over the pipeline's max_event_bytes, or Kafka refused
	// it as too large for the events topic.
	ReasonEventTooLarge = "event_too_large"
	// ReasonEventRejected: Kafka refused the event record itself for another permanent reason (an
	// invalid record); the detail has Kafka's error.
	ReasonEventRejected = "event_rejected"
	// ReasonProcessingError: processing the request panicked (a defect of Inlet's that this input
	// reaches); the request fails alone and the pipeline goes on.
	ReasonProcessingError = "processing_error"
	// ReasonInvalidJSON: an accepted record's body breaks package jsonvalid's rule, which the edge
	// did not check (the record is older than the check, or another producer wrote it). The same word
	// as OutcomeInvalidJSON, the edge's refusal of such a body.
	ReasonInvalidJSON = string(OutcomeInvalidJSON)
	// ReasonInvalidRecord: the record broke this contract (a header missing or malformed). The pipeline
	// still logs it so that nothing the edge acknowledged disappears silently.
	ReasonInvalidRecord = "invalid_record"
	// ReasonExpressionError: a route's condition or a mapping's expression failed on this request (a
	// key missing without has(), a type mismatch, the cost limit); the detail names the route and the
	// attribute.
	ReasonExpressionError = "expression_error"
	// ReasonFanOutInvalid: a fan-out route's array is not an array in this request.
	ReasonFanOutInvalid = "fan_out_invalid"
	// ReasonFanOutTooLarge: a fan-out route's array has more elements than the pipeline fires for one
	// request (webhook.MaxFanOut); none is fired.
	ReasonFanOutTooLarge = "fan_out_too_large"
)

// Reasons of a skipped request (activity status skipped): accepted, authenticated, no event to fire,
// not a failure.
const (
	// ReasonNoRoute: no route's condition holds for the request.
	ReasonNoRoute = "no_route"
	// ReasonNoElements: the fan-out route that took the request found its array empty, absent or null.
	ReasonNoElements = "no_elements"
)

// ReasonWaitingForUser is the reason of a held request (activity status held): its route's unknown-user
// policy is hold and the directory does not know its user yet. It runs again when the user appears, or
// fails with user_not_found when its hold runs out.
const ReasonWaitingForUser = "waiting_for_user"

// Header keys of webhooks.events records. The value is the event as JSON (see Event in package pipeline).
const (
	HeaderEventID   = "inlet-event-id" // = the request id, or ElementEventID for a fan-out's element
	HeaderEventName = "inlet-event-name"
)

// ElementEventID is the id of the event a fan-out fires for element index of request requestID: a
// name-based UUID (version 5) in the request id's namespace, so that every run of the request — a
// redelivery, a replay, the pipeline after a crash — gives each element the same id. A request's single
// event keeps the request id.
func ElementEventID(requestID uuid.UUID, index int) uuid.UUID {
	var b [20]byte
	return uuid.NewSHA1(requestID, strconv.AppendInt(b[:0], int64(index), 10))
}
