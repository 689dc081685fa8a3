namespace TinyOps.Server.Storage;

/// <summary>Numbered schema migrations; each runs once, in order, at start. Never edit a released one: add another.</summary>
internal static class Schema
{
    public static IEnumerable<(long Version, string Sql)> Migrations(Database db)
    {
        string id = db.IdentityColumn;
        yield return (1, $"""
            CREATE TABLE projects (name TEXT NOT NULL PRIMARY KEY, description TEXT NOT NULL, created_at BIGINT NOT NULL);
            CREATE TABLE api_tokens (id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, project TEXT NULL,
                secret_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE audit (id {id}, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,
                project TEXT NULL, detail TEXT NOT NULL);
            CREATE INDEX audit_project ON audit (project, id);
            CREATE TABLE signing_keys (key_id TEXT NOT NULL PRIMARY KEY, public_key TEXT NOT NULL, private_key TEXT NOT NULL,
                created_at BIGINT NOT NULL, retired INTEGER NOT NULL DEFAULT 0, endorsed_by TEXT NULL, endorsement TEXT NULL);
            CREATE TABLE models (project TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, created_at BIGINT NOT NULL,
                PRIMARY KEY (project, name));
            CREATE TABLE model_versions (project TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, created_at BIGINT NOT NULL,
                created_by TEXT NOT NULL, notes TEXT NOT NULL, PRIMARY KEY (project, model, version));
            CREATE TABLE aliases (project TEXT NOT NULL, model TEXT NOT NULL, alias TEXT NOT NULL, version TEXT NOT NULL,
                PRIMARY KEY (project, model, alias));
            CREATE TABLE variants (id TEXT NOT NULL PRIMARY KEY, project TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
                name TEXT NOT NULL, parent_id TEXT NULL, recipe TEXT NOT NULL, parameters_json TEXT NOT NULL,
                artifact_sha256 TEXT NOT NULL, artifact_size BIGINT NOT NULL, metadata_json TEXT NOT NULL, status TEXT NOT NULL,
                status_reason TEXT NULL, metrics_json TEXT NOT NULL, artifact_signature TEXT NOT NULL, signing_key_id TEXT NOT NULL,
                created_at BIGINT NOT NULL);
            CREATE INDEX variants_version ON variants (project, model, version);
            CREATE TABLE artifacts (sha256 TEXT NOT NULL PRIMARY KEY, size BIGINT NOT NULL, project TEXT NOT NULL, created_at BIGINT NOT NULL);
            CREATE TABLE enrollment_tokens (token_hash TEXT NOT NULL PRIMARY KEY, project TEXT NOT NULL, uses_left INTEGER NOT NULL,
                expires_at BIGINT NOT NULL, tags_json TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL);
            CREATE TABLE devices (id TEXT NOT NULL PRIMARY KEY, project TEXT NOT NULL, name TEXT NOT NULL, public_key TEXT NOT NULL,
                tags_json TEXT NOT NULL, capabilities_json TEXT NOT NULL, reported_json TEXT NULL, enrolled_at BIGINT NOT NULL,
                last_seen_at BIGINT NULL, revoked INTEGER NOT NULL DEFAULT 0, desired_deployment_id TEXT NULL, desired_variant_id TEXT NULL,
                UNIQUE (project, name));
            CREATE TABLE device_nonces (device_id TEXT NOT NULL, nonce TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (device_id, nonce));
            CREATE TABLE deployments (id TEXT NOT NULL PRIMARY KEY, project TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
                selector_json TEXT NOT NULL, canary_percent INTEGER NOT NULL, auto_promote INTEGER NOT NULL, max_failure_percent INTEGER NOT NULL,
                status TEXT NOT NULL, stage INTEGER NOT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, updated_at BIGINT NOT NULL);
            CREATE TABLE deployment_targets (deployment_id TEXT NOT NULL, device_id TEXT NOT NULL, variant_id TEXT NULL, state TEXT NOT NULL,
                reason TEXT NOT NULL, stage INTEGER NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (deployment_id, device_id));
            CREATE TABLE telemetry_batches (device_id TEXT NOT NULL, batch_id TEXT NOT NULL, received_at BIGINT NOT NULL,
                records INTEGER NOT NULL, dropped BIGINT NOT NULL, PRIMARY KEY (device_id, batch_id));
            CREATE TABLE inferences (id {id}, project TEXT NOT NULL, device_id TEXT NOT NULL, device_class TEXT NOT NULL,
                model TEXT NOT NULL, version TEXT NOT NULL, variant_id TEXT NOT NULL, at BIGINT NOT NULL, latency_us DOUBLE PRECISION NOT NULL,
                device_latency_us DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL, predicted_class INTEGER NOT NULL);
            CREATE INDEX inferences_project ON inferences (project, device_class, variant_id)
            """);
        // Issue 5: recipes per model, evaluation sets, background jobs, variant lineage and evaluation, latency budgets.
        yield return (2, """
            CREATE TABLE model_recipes (project TEXT NOT NULL, model TEXT NOT NULL, name TEXT NOT NULL, text TEXT NOT NULL, sha256 TEXT NOT NULL,
                updated_at BIGINT NOT NULL, updated_by TEXT NOT NULL, PRIMARY KEY (project, model));
            CREATE TABLE evaluation_sets (project TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, description TEXT NOT NULL,
                sample_count INTEGER NOT NULL, sample_shape_json TEXT NOT NULL, classes INTEGER NOT NULL, inputs_sha256 TEXT NULL,
                labels_sha256 TEXT NULL, created_at BIGINT NOT NULL, created_by TEXT NOT NULL, PRIMARY KEY (project, name));
            CREATE TABLE jobs (id TEXT NOT NULL PRIMARY KEY, project TEXT NOT NULL, kind TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
                payload_json TEXT NOT NULL, state TEXT NOT NULL, progress INTEGER NOT NULL, message TEXT NOT NULL, error TEXT NULL,
                attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL, cancel_requested INTEGER NOT NULL DEFAULT 0, worker TEXT NULL,
                created_at BIGINT NOT NULL, created_by TEXT NOT NULL, started_at BIGINT NULL, finished_at BIGINT NULL, heartbeat_at BIGINT NULL,
                updated_at BIGINT NOT NULL);
            CREATE INDEX jobs_state ON jobs (state, created_at);
            CREATE INDEX jobs_project ON jobs (project, created_at);
            ALTER TABLE variants ADD COLUMN lineage_json TEXT NULL;
            ALTER TABLE variants ADD COLUMN evaluation_json TEXT NULL;
            ALTER TABLE deployments ADD COLUMN latency_budgets_json TEXT NOT NULL DEFAULT '{}'
            """);
    }
}
