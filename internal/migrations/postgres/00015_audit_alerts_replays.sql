-- The audit log (00013) covers what 00011 and 00014 added.
--
-- alert_rules: every change, like events' (target alert_rule, named by its id).
--
-- projects: 00014's columns (notification_format, the retention days) are already in the projects
-- trigger's row; the signing secret's and the mask key's ciphertexts are hidden by name
-- (inlet_audit_visible drops every …ciphertext column) and are listed as hidden here as well, so that
-- neither ever reaches the log should the name rule change. A ciphertext change alone leaves no entry, so
-- a rotation of the signing secret sets signing_secret_rotated_at, which is recorded (creating the secret
-- on first read, making the mask key and resealing them under a new master key are not config changes
-- and leave none).
--
-- webhooks.sensitive (00014) is a column of the webhook's row, already recorded by its trigger.
--
-- replay_jobs: the creation of a job (target replay_job, named by its id) and its cancellation; the
-- runner's leases, progress and end (running, done, failed) are not config changes and are not recorded:
-- the update trigger fires only when state becomes 'cancelled'.

-- +goose Up
ALTER TABLE projects ADD COLUMN signing_secret_rotated_at timestamptz;

DROP TRIGGER projects_audit ON projects;
CREATE TRIGGER projects_audit AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('project', 'id', 'id',
        '{signing_secret_ciphertext,mask_key_ciphertext}', '{}', 'false');

CREATE TRIGGER alert_rules_audit AFTER INSERT OR UPDATE OR DELETE ON alert_rules
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('alert_rule', 'id', 'project_id', '{}', '{}', 'false');

CREATE TRIGGER replay_jobs_audit_create AFTER INSERT ON replay_jobs
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('replay_job', 'id', 'project_id', '{}', '{}', 'false');
CREATE TRIGGER replay_jobs_audit_cancel AFTER UPDATE OF state ON replay_jobs
    FOR EACH ROW WHEN (NEW.state = 'cancelled' AND OLD.state <> 'cancelled')
    EXECUTE FUNCTION inlet_audit_row('replay_job', 'id', 'project_id', '{}', '{}', 'false');

-- +goose Down
DROP TRIGGER replay_jobs_audit_cancel ON replay_jobs;
DROP TRIGGER replay_jobs_audit_create ON replay_jobs;
DROP TRIGGER alert_rules_audit ON alert_rules;
DROP TRIGGER projects_audit ON projects;
CREATE TRIGGER projects_audit AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION inlet_audit_row('project', 'id', 'id', '{}', '{}', 'false');
ALTER TABLE projects DROP COLUMN signing_secret_rotated_at;
