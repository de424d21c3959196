-- Values as senders send them.
--
-- webhooks.time_zone is the IANA zone (e.g. Europe/Berlin) in which the pipeline reads dates that carry
-- no offset ("2026-11-26 10:12:31", a date alone). The application checks the name is one Go's time
-- zone database knows; existing webhooks keep reading such dates as UTC, as before.
--
-- E-mails are matched after Unicode NFC normalisation on both sides (the directory writes them NFC,
-- lookups normalise the value looked up) and case-insensitively through lower(), the expression of the
-- unique index users_email. Rows written before are normalised here, so that "é" typed as e + U+0301
-- matches. A row whose normalised e-mail would collide with another user's, normalised or not, is left
-- as it is (the unique index would refuse it, and two such rows would refuse each other): it keeps
-- matching only the spelling it was written with.

-- +goose Up
ALTER TABLE webhooks ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

UPDATE users u SET email = normalize(u.email, NFC)
WHERE u.email <> '' AND u.email IS NOT NFC NORMALIZED
  AND NOT EXISTS (SELECT 1 FROM users o WHERE o.project_id = u.project_id AND o.user_id <> u.user_id
                  AND lower(normalize(o.email, NFC)) = lower(normalize(u.email, NFC)));

-- +goose Down
-- The e-mails stay normalised: NFC is the same address, and nothing read the decomposed form.
ALTER TABLE webhooks DROP COLUMN time_zone;
