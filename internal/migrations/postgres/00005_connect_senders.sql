-- Connecting real senders (issue 11). A webhook is connected as a sender (Shopify, Stripe, … or Inlet's
-- own Bearer secret, the default) and verified in that sender's way:
--   sender            the catalog entry picked in the Connect step ('' reads as 'inlet');
--   verification      how requests prove their sender (internal/verify's Config as JSON; '{}' is the
--                     Bearer secret every webhook had before);
--   secret_ciphertext now holds whatever secret the mode uses: the Bearer secret Inlet made, a Basic
--                     password or URL token, or the signing secret the user pasted from the provider;
--                     secret_digest is SHA-256 of "Bearer <secret>" in bearer mode, of the secret
--                     otherwise (kept NOT NULL; only bearer mode reads it);
--   prev_secret_ciphertext the secret replaced by the last rotation, which keeps verifying until
--                     prev_secret_expires_at (HMAC modes need it in clear; bearer mode still reads
--                     prev_secret_digest, so rows rotated before this migration keep their grace);
--   sender_headers    request headers the user wants kept with each record (JSON array of names), on
--                     top of the sender's own;
--   dedup             where the sender's delivery id is (JSON: key, window, hash_headers), '{}' for none;
--   handshake_token   Meta's verify token ('' unless the sender is meta).

-- +goose Up
ALTER TABLE webhooks
    ADD COLUMN sender                 text  NOT NULL DEFAULT '',
    ADD COLUMN verification           jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN prev_secret_ciphertext bytea,
    ADD COLUMN sender_headers         jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN dedup                  jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN handshake_token        text  NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE webhooks
    DROP COLUMN sender,
    DROP COLUMN verification,
    DROP COLUMN prev_secret_ciphertext,
    DROP COLUMN sender_headers,
    DROP COLUMN dedup,
    DROP COLUMN handshake_token;
