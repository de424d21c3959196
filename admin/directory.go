package admin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/erasure"
	"github.com/inlet-dev/inlet/internal/identify"
)

// userView is a user with its devices.
type userView struct {
	directory.User
	Devices []directory.Device `json:"devices"`
}

func (a *api) putUser(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	var req struct {
		Email string `json:"email"`
		Phone string `json:"phone"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	u, created, err := a.directory.UpsertUser(r.Context(), projectID(r.Context()),
		directory.User{UserID: r.PathValue("user_id"), Email: req.Email, Phone: req.Phone})
	if err != nil {
		return 0, nil, err
	}
	if created {
		return http.StatusCreated, u, nil
	}
	return http.StatusOK, u, nil
}

func (a *api) getUser(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	pid, id := projectID(r.Context()), r.PathValue("user_id")
	u, err := a.directory.GetUser(r.Context(), pid, id)
	if err != nil {
		return 0, nil, err
	}
	devs, err := a.directory.ListDevices(r.Context(), pid, id)
	if err != nil {
		return 0, nil, err
	}
	if devs == nil {
		devs = []directory.Device{}
	}
	return http.StatusOK, userView{u, devs}, nil
}

// deleteUser deletes the user from the directory and starts the erasure of its rows from ClickHouse:
// 202 with the erasure job, whose status GET /api/v1/erasures/{id} follows.
func (a *api) deleteUser(w http.ResponseWriter, r *http.Request) (int, any, error) {
	job, err := a.directory.DeleteUser(r.Context(), projectID(r.Context()), r.PathValue("user_id"))
	if err != nil {
		return 0, nil, err
	}
	return a.erasureStarted(w, job)
}

// erasureStarted answers a deletion: 202, the job and its Location; a runner of this process is woken.
func (a *api) erasureStarted(w http.ResponseWriter, job erasure.Job) (int, any, error) {
	if a.wakeErasures != nil {
		a.wakeErasures()
	}
	w.Header().Set("Location", "/api/v1/erasures/"+strconv.FormatInt(job.ID, 10))
	return http.StatusAccepted, job, nil
}

func (a *api) putDevice(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	var req struct {
		UserID   string `json:"user_id"`
		Platform string `json:"platform"`
	}
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	d, created, err := a.directory.UpsertDevice(r.Context(), projectID(r.Context()),
		directory.Device{HWID: r.PathValue("hwid"), UserID: req.UserID, Platform: req.Platform})
	if err != nil {
		return 0, nil, err
	}
	if created {
		return http.StatusCreated, d, nil
	}
	return http.StatusOK, d, nil
}

func (a *api) getDevice(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	d, err := a.directory.GetDevice(r.Context(), projectID(r.Context()), r.PathValue("hwid"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, d, nil
}

// deleteDevice is deleteUser for a device.
func (a *api) deleteDevice(w http.ResponseWriter, r *http.Request) (int, any, error) {
	job, err := a.directory.DeleteDevice(r.Context(), projectID(r.Context()), r.PathValue("hwid"))
	if err != nil {
		return 0, nil, err
	}
	return a.erasureStarted(w, job)
}

// lookup finds a user or device the way the pipeline matches webhook identifiers:
// GET /api/v1/lookup?kind=email&value=jane@example.com.
func (a *api) lookup(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	kind := identify.Kind(q.Get("kind"))
	var v domainerr.ValidationError
	if !kind.Valid() {
		v.Add("kind", "must be user_id, email, phone or hwid")
	}
	value := strings.TrimSpace(q.Get("value"))
	if value == "" || len(value) > 256 {
		v.Add("value", "must be 1..256 characters")
	}
	if err := v.Err(); err != nil {
		return 0, nil, err
	}
	p, err := a.directory.Lookup(r.Context(), projectID(r.Context()), kind, value)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, p, nil
}

// importDirectory streams an NDJSON body of user and device lines into the directory. Lines are applied
// independently: the answer lists the ones that failed, by line number.
func (a *api) importDirectory(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/x-ndjson") &&
		!strings.HasPrefix(ct, "application/jsonl") && !strings.HasPrefix(ct, "text/plain") {
		return 0, nil, &statusError{http.StatusUnsupportedMediaType, "send Content-Type: application/x-ndjson"}
	}
	body := http.MaxBytesReader(nil, r.Body, maxImportBody)
	res, err := a.directory.Import(r.Context(), projectID(r.Context()), body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return 0, nil, &statusError{http.StatusRequestEntityTooLarge, "import body is over the limit; lines before it were applied: " + err.Error()}
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res, nil
}
