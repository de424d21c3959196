package ingestor

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"github.com/inlet-dev/inlet/internal/form"
	"github.com/inlet-dev/inlet/internal/jsonvalid"
)

// bodyKind is which rule a body is held to, by its Content-Type.
type bodyKind uint8

const (
	bodyJSON        bodyKind = iota // package jsonvalid's rule
	bodyForm                        // package form's rule
	bodyUnsupported                 // neither: 415
)

var (
	mediaJSON      = []byte("application/json")
	mediaText      = []byte("text/plain")
	mediaAppPrefix = []byte("application/")
	mediaJSONSufx  = []byte("+json")
)

// kindOf reads a body's kind from its Content-Type, without allocating: JSON when there is none (what
// every sender of Inlet's own Bearer mode did before other types were taken), for application/json,
// application/*+json and text/plain (senders that cannot set a type); a form for
// application/x-www-form-urlencoded and multipart/form-data; anything else is unsupported.
// Parameters (charset, boundary) do not change the kind.
func kindOf(contentType []byte) bodyKind {
	mt := contentType
	if i := bytes.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = bytes.Trim(mt, " \t")
	switch {
	case len(mt) == 0, bytes.EqualFold(mt, mediaJSON), bytes.EqualFold(mt, mediaText):
		return bodyJSON
	case len(mt) > len(mediaAppPrefix)+len(mediaJSONSufx) &&
		bytes.EqualFold(mt[:len(mediaAppPrefix)], mediaAppPrefix) &&
		bytes.EqualFold(mt[len(mt)-len(mediaJSONSufx):], mediaJSONSufx):
		return bodyJSON
	case form.TypeOf(bytesString(mt)) != form.NotForm:
		return bodyForm
	}
	return bodyUnsupported
}

// checkBody holds the body to its kind's rule: the result to answer (resAccepted when it passes) and
// the detail for the activity log.
func (s *Server) checkBody(kind bodyKind, contentType, body []byte) (result, error) {
	switch kind {
	case bodyJSON:
		if err := jsonvalid.Validate(body, s.cfg.MaxJSONDepth); err != nil {
			return resInvalidJSON, err
		}
	case bodyForm:
		if err := form.Validate(bytesString(contentType), body); err != nil {
			var fe *form.Error
			if errors.As(err, &fe) && fe.Kind == form.File {
				return resFormFile, err
			}
			return resInvalidForm, err
		}
	default:
		mt := contentType
		if i := bytes.IndexByte(mt, ';'); i >= 0 {
			mt = mt[:i]
		}
		return resUnsupportedMediaType, fmt.Errorf("content type %q is neither JSON nor a form", mt[:min(len(mt), 100)])
	}
	return resAccepted, nil
}

// bytesString views b as a string without copying, for the calls that take one and keep nothing.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
