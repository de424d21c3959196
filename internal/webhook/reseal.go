package webhook

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Bounds of ResealSecrets.
const (
	// DefaultResealBatch is how many webhook rows one reseal transaction locks and rewrites.
	DefaultResealBatch = 500
	// MaxResealBatch bounds the batch: a larger one holds its rows' locks (and so the console's edits of
	// those webhooks) longer for no gain.
	MaxResealBatch = 10000
	// maxResealFailures bounds the failures a report lists; Failed counts them all.
	maxResealFailures = 100
)

// ResealReport is what ResealSecrets did.
type ResealReport struct {
	// Rows is the number of webhook rows read, deleted ones included (their secrets are sealed too).
	Rows int
	// Resealed counts the ciphertexts rewritten under the current master key; Current those that
	// already were.
	Resealed, Current int
	// Failed counts the ciphertexts no configured key opens, left as they are; Failures lists the first
	// 100 of them.
	Failed   int
	Failures []ResealFailure
}

// ResealFailure is a stored secret that no configured master key opens.
type ResealFailure struct {
	// PublicID is the webhook's id; Column is secret_ciphertext or prev_secret_ciphertext.
	PublicID, Column string
	// Err is secret.ErrUnknownKey (the ciphertext names a key that is not configured) or secret.ErrOpen.
	Err error
}

// ResealSecrets rewrites every stored webhook secret (secret_ciphertext and prev_secret_ciphertext,
// deleted webhooks' too) under the current master key, batch rows per transaction in id order, so that
// previous keys can be removed from the settings. Ciphertexts already under the current key are left
// alone, so it is safe to stop and run again, and cheap when there is nothing left to do. A batch's
// rows are locked (SELECT … FOR UPDATE) while they are rewritten, so a concurrent edit or rotation of
// one of them waits for the batch rather than being lost; the plaintexts do not change, so the edge and
// the pipeline go on verifying as before (the update's notification only makes them reload the row).
// A ciphertext no configured key opens is counted in the report and left as it is; it is not an error.
// progress, when not nil, gets the report so far after each batch.
func (s *Store) ResealSecrets(ctx context.Context, batch int, progress func(ResealReport)) (ResealReport, error) {
	var r ResealReport
	if batch <= 0 || batch > MaxResealBatch {
		return r, fmt.Errorf("reseal batch %d is not in 1..%d", batch, MaxResealBatch)
	}
	var after int64
	for {
		n := 0
		var batchReport ResealReport
		err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
			n, batchReport = 0, ResealReport{}
			type row struct {
				id           int64
				publicID     string
				sealed, prev []byte
				newSealed    []byte
				newPrev      []byte
				changed      bool
			}
			rows, err := tx.Query(ctx, `SELECT id, public_id, secret_ciphertext, prev_secret_ciphertext FROM webhooks
				WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE`, after, batch)
			if err != nil {
				return err
			}
			var todo []row
			for rows.Next() {
				var w row
				if err := rows.Scan(&w.id, &w.publicID, &w.sealed, &w.prev); err != nil {
					rows.Close()
					return err
				}
				todo = append(todo, w)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for i := range todo {
				w := &todo[i]
				n++
				after = w.id
				batchReport.Rows++
				w.newSealed, w.newPrev = w.sealed, w.prev
				reseal := func(column string, in []byte) []byte {
					if in == nil {
						return nil
					}
					out, changed, err := s.sealer.Reseal(in, []byte(w.publicID))
					switch {
					case err != nil:
						batchReport.Failed++
						batchReport.Failures = append(batchReport.Failures, ResealFailure{PublicID: w.publicID, Column: column, Err: err})
						return in
					case changed:
						batchReport.Resealed++
						w.changed = true
					default:
						batchReport.Current++
					}
					return out
				}
				w.newSealed = reseal("secret_ciphertext", w.sealed)
				w.newPrev = reseal("prev_secret_ciphertext", w.prev)
			}
			for _, w := range todo {
				if !w.changed {
					continue
				}
				if _, err := tx.Exec(ctx, `UPDATE webhooks SET secret_ciphertext = $2, prev_secret_ciphertext = $3 WHERE id = $1`,
					w.id, w.newSealed, w.newPrev); err != nil {
					return fmt.Errorf("webhook %s: %w", w.publicID, err)
				}
			}
			return nil
		})
		if err != nil {
			return r, fmt.Errorf("reseal webhook secrets after row %d: %w", after, err)
		}
		// Counted once the batch has committed: a failed batch is redone by the next run.
		r.Rows += batchReport.Rows
		r.Resealed += batchReport.Resealed
		r.Current += batchReport.Current
		r.Failed += batchReport.Failed
		for _, f := range batchReport.Failures {
			if len(r.Failures) < maxResealFailures {
				r.Failures = append(r.Failures, f)
			}
		}
		if progress != nil && n > 0 {
			progress(r)
		}
		if n < batch {
			return r, nil
		}
	}
}
