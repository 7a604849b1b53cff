//! The projection tables, identical on SQLite and PostgreSQL.
//!
//! Timestamps are stored as fixed-width RFC 3339 text in UTC with nanoseconds
//! (`2024-05-01T12:00:00.000000000Z`): they sort correctly as text on both backends,
//! keep full precision, and need no backend-specific types.

diesel::table! {
    /// One row per job: indexed columns for listing plus the folded `Job` as JSON.
    jobs (id) {
        id -> Text,
        status -> Text,
        phase -> Nullable<Text>,
        progress -> Double,
        attempts -> Integer,
        submitted_at -> Text,
        updated_at -> Text,
        state -> Text,
        /// The highest `seq` of the job's events (0 before any).
        last_seq -> BigInt,
        /// The job's tenant (NULL for jobs recorded before tenants).
        tenant -> Nullable<Text>,
        /// The job's labels: a JSON object of strings (`{}` for none).
        labels -> Text,
        /// The upload the job's source names, if it names one.
        upload -> Nullable<Text>,
    }
}

diesel::table! {
    /// Every projected event with its place in the job's history and on Kafka.
    events (event_id) {
        event_id -> Text,
        job_id -> Text,
        seq -> BigInt,
        #[sql_name = "type"]
        kind -> Text,
        occurred_at -> Text,
        body -> Text,
        topic -> Text,
        #[sql_name = "partition"]
        kafka_partition -> Integer,
        #[sql_name = "offset"]
        kafka_offset -> BigInt,
        /// The event's place in the order the projector recorded events,
        /// over every job (1, 2, … without gaps).
        ordinal -> BigInt,
    }
}

diesel::table! {
    /// The next offset to read per topic partition, committed with the rows.
    offsets (topic, kafka_partition) {
        topic -> Text,
        #[sql_name = "partition"]
        kafka_partition -> Integer,
        next_offset -> BigInt,
    }
}

diesel::table! {
    /// API keys (not a projection: no topic holds them). Only a hash of each
    /// key is kept.
    api_keys (id) {
        id -> Text,
        tenant -> Text,
        name -> Nullable<Text>,
        /// Comma-separated.
        scopes -> Text,
        /// SHA-256 of the key, lowercase hex.
        hash -> Text,
        created_at -> Text,
        revoked_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Uploads and whose they are (not a projection).
    uploads (id) {
        id -> Text,
        tenant -> Text,
        bytes -> BigInt,
        created_at -> Text,
        /// The last time a submission through the API named it.
        used_at -> Nullable<Text>,
        /// When retention removed it, under which rule, with which job's
        /// working data (`retention.work`).
        expired_at -> Nullable<Text>,
        expired_rule -> Nullable<Text>,
        expired_job -> Nullable<Text>,
        /// Set once the object is gone (NULL while expired: still to remove).
        freed_bytes -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Who holds a finished job's working data: a retry on its way
    /// (`retry`) or the janitor removing it (`expiring`) (not a projection).
    work_claims (job_id) {
        job_id -> Text,
        kind -> Text,
        at -> Text,
    }
}

diesel::table! {
    /// Webhook subscriptions of tenants (not a projection).
    webhooks (id) {
        id -> Text,
        tenant -> Text,
        url -> Text,
        /// A JSON array of event type names (`["*"]`: every type).
        events -> Text,
        secret -> Text,
        created_at -> Text,
        deleted_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Every webhook delivery attempt with its outcome (not a projection).
    webhook_deliveries (webhook_id, event_id, attempt) {
        webhook_id -> Text,
        event_id -> Text,
        attempt -> Integer,
        job_id -> Text,
        event_type -> Text,
        outcome -> Text,
        status -> Nullable<Integer>,
        error -> Nullable<Text>,
        at -> Text,
    }
}

diesel::joinable!(events -> jobs (job_id));
diesel::allow_tables_to_appear_in_same_query!(
    jobs,
    events,
    offsets,
    api_keys,
    uploads,
    webhooks,
    webhook_deliveries,
    work_claims
);
