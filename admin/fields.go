package admin

import (
	"fmt"
	"io"
	"net/http"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/fieldpath"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// maxSampleFields bounds the fields listed for one sample (the console's dropdowns).
const maxSampleFields = 2000

// sampleFields takes a JSON sample payload as the request body and lists every field path in it with its
// JSON type and an example value, in document order. A sample the edge would refuse as a webhook body
// is a 400 on "body" in the words of the activity log's detail (see fieldpath.Fields).
func (a *api) sampleFields(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, webhook.MaxSamplePayload+1))
	if err != nil {
		return 0, nil, &statusError{http.StatusBadRequest, "reading the body: " + err.Error()}
	}
	if len(b) > webhook.MaxSamplePayload {
		return 0, nil, domainerr.Invalid("body", "sample payload is over %d bytes", webhook.MaxSamplePayload)
	}
	fields, err := fieldpath.Fields(b, maxSampleFields)
	if err != nil {
		return 0, nil, domainerr.Invalid("body", "%v", err)
	}
	return http.StatusOK, map[string]any{"fields": fields, "count": len(fields), "note": fmt.Sprintf("at most %d fields are listed", maxSampleFields)}, nil
}
