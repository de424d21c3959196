package ingestor

import (
	"errors"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/wire"
)

// result is what the edge decided about one request. Each has one HTTP status, one stable error code for
// the sender, one metric label, and maybe an activity-log outcome.
type result uint8

const (
	resAccepted result = iota
	resAuthRejected
	resWebhookDisabled
	resInvalidJSON
	resPayloadTooLarge
	resWebhookNotFound
	resRateLimited
	resConfigUnavailable // config store down and nothing cached: fail closed
	resOverloaded        // MaxInFlight reached
	resKafkaTimeout      // no ack within AckTimeout
	resKafkaBufferFull   // producer buffer at its bound
	resKafkaError        // the producer failed the record
	resShuttingDown
	resRouteNotFound
	resMethodNotAllowed
	resHeaderTooLarge
	resRequestTimeout
	resBadRequest           // unparsable HTTP
	resInvalidForm          // a form body that breaks package form's rule
	resUnsupportedMediaType // neither JSON nor a form
	resFormFile             // a multipart form with a file part
	resHandshake            // a sender's handshake answered (Slack, Meta, Zoom)
	resHandshakeRefused     // Meta's handshake with a verify token that is not the webhook's
	resInvalidHandshake     // a handshake whose challenge is missing, too long or of other characters
	numResults
)

type resultInfo struct {
	status  int
	code    string // stable, in the JSON error body
	message string
	label   string       // metric label
	outcome wire.Outcome // appended to Kafka when non-empty (rate-limited unless accepted)
	retry   bool         // sends Retry-After
	body    []byte       // the JSON error body, rendered once
}

var results = [numResults]resultInfo{
	resAccepted:          {status: 202, label: "accepted", outcome: wire.OutcomeAccepted},
	resAuthRejected:      {401, "auth_rejected", "the request's credentials or signature are missing or do not match this webhook's secret", "auth_rejected", wire.OutcomeAuthRejected, false, nil},
	resWebhookDisabled:   {403, "webhook_disabled", "this webhook is disabled", "webhook_disabled", wire.OutcomeWebhookDisabled, false, nil},
	resInvalidJSON:       {400, "invalid_json", "the body is not valid I-JSON (RFC 7493): not JSON, not UTF-8, a control character or lone surrogate in a string, a key repeated in an object, or nested too deeply", "invalid_json", wire.OutcomeInvalidJSON, false, nil},
	resPayloadTooLarge:   {413, "payload_too_large", "the body is larger than this endpoint accepts", "payload_too_large", wire.OutcomePayloadTooLarge, false, nil},
	resWebhookNotFound:   {404, "webhook_not_found", "no webhook has this id", "webhook_not_found", "", false, nil},
	resRateLimited:       {429, "rate_limited", "this webhook is sending faster than its rate limit; retry later", "rate_limited", "", true, nil},
	resConfigUnavailable: {503, "unavailable", "temporarily unable to accept requests; retry later", "config_unavailable", "", true, nil},
	resOverloaded:        {503, "unavailable", "temporarily unable to accept requests; retry later", "overloaded", "", true, nil},
	resKafkaTimeout:      {503, "unavailable", "temporarily unable to accept requests; retry later", "kafka_timeout", "", true, nil},
	resKafkaBufferFull:   {503, "unavailable", "temporarily unable to accept requests; retry later", "kafka_buffer_full", "", true, nil},
	resKafkaError:        {503, "unavailable", "temporarily unable to accept requests; retry later", "kafka_error", "", true, nil},
	resShuttingDown:      {503, "unavailable", "temporarily unable to accept requests; retry later", "shutting_down", "", true, nil},
	resRouteNotFound:     {404, "not_found", "the only endpoint is POST /hooks/{webhook_id}", "route_not_found", "", false, nil},
	resMethodNotAllowed:  {405, "method_not_allowed", "webhooks are delivered with POST", "method_not_allowed", "", false, nil},
	resHeaderTooLarge:    {431, "header_too_large", "the request headers are larger than this endpoint accepts", "header_too_large", "", false, nil},
	resRequestTimeout:    {408, "request_timeout", "the request was not received in time", "request_timeout", "", false, nil},
	resBadRequest:        {400, "bad_request", "the request is not valid HTTP", "bad_request", "", false, nil},
	resInvalidForm:       {400, "invalid_form", "the form body cannot be read: a malformed percent-escape or multipart part, invalid UTF-8, or more fields, or longer names or values, than accepted", "invalid_form", wire.OutcomeInvalidForm, false, nil},
	resUnsupportedMediaType: {415, "unsupported_media_type", "the body must be JSON (no Content-Type, application/json, application/*+json or text/plain) or a form (application/x-www-form-urlencoded, or multipart/form-data with fields only)", "unsupported_media_type",
		wire.OutcomeUnsupportedMediaType, false, nil},
	resFormFile: {415, "unsupported_media_type", "multipart/form-data bodies may carry fields only: file parts are not accepted", "form_file",
		wire.OutcomeUnsupportedMediaType, false, nil},
	resHandshake:        {status: 200, label: "handshake"},
	resHandshakeRefused: {403, "handshake_refused", "the verification request's token does not match this webhook's", "handshake_refused", "", false, nil},
	resInvalidHandshake: {400, "invalid_handshake", "the verification request's challenge is missing, longer than 256 bytes, or not letters, digits and -._~+/=", "invalid_handshake", "", false, nil},
}

func init() {
	for i := range results {
		r := &results[i]
		if r.code != "" {
			// Codes and messages are constants without characters JSON would escape.
			r.body = []byte(`{"error":{"code":"` + r.code + `","message":"` + r.message + `"}}`)
		}
	}
}

// connsPerIPBody is the error body of a connection refused over MaxConnsPerIP: the code every 503 of the
// edge has, so that senders need to know only one, and a message that says whose connections are many.
var connsPerIPBody = []byte(`{"error":{"code":"unavailable","message":"too many connections from this address; retry later"}}`)

// refusal renders the whole HTTP answer to a connection refused over a connection limit, written by the
// listener before anything of the connection is read (see connLimiter): 503 with the edge's JSON error
// body, Retry-After and Connection: close.
func refusal(body, retryAfter []byte) []byte {
	b := []byte("HTTP/1.1 503 Service Unavailable\r\nServer: inlet\r\nContent-Type: application/json\r\nContent-Length: ")
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nRetry-After: "...)
	b = append(b, retryAfter...)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return append(b, body...)
}

// classify maps every error the edge can meet to its result: config lookups, the producer, and the
// HTTP server's request parsing. It is the one place where errors become HTTP statuses.
func classify(err error) result {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, domainerr.ErrNotFound):
		return resWebhookNotFound
	case errors.Is(err, domainerr.ErrUnavailable):
		return resConfigUnavailable
	case errors.Is(err, errAckTimeout):
		return resKafkaTimeout
	case errors.Is(err, kgo.ErrMaxBuffered):
		return resKafkaBufferFull
	case errors.Is(err, errShuttingDown), errors.Is(err, kgo.ErrClientClosed):
		return resShuttingDown
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return resPayloadTooLarge
	case errors.As(err, &small):
		return resHeaderTooLarge
	case errors.As(err, &netErr) && netErr.Timeout():
		return resRequestTimeout
	case errors.Is(err, errProduce):
		return resKafkaError
	case errors.Is(err, errLookup):
		// Any other lookup failure is treated as unavailable: fail closed.
		return resConfigUnavailable
	}
	return resBadRequest
}

// Sentinel errors of the edge.
var (
	// errAckTimeout: Kafka did not acknowledge the record within AckTimeout.
	errAckTimeout = errors.New("kafka ack timeout")
	// errShuttingDown: the producer is being flushed; no new record is accepted.
	errShuttingDown = errors.New("ingestor shutting down")
	// errProduce wraps any other producer failure.
	errProduce = errors.New("kafka produce")
	// errLookup wraps any other webhook lookup failure.
	errLookup = errors.New("webhook lookup")
)
