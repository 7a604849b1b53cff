//! Webhooks as the API keeps them (beside the projections, like keys: no
//! topic holds them, so `projector --rebuild` leaves them alone), and the
//! record of every delivery attempt the webhook sender makes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::queries::query;
use crate::rows::timestamp;
use crate::schema::{webhook_deliveries, webhooks};
use crate::{ProjectionError, Projections};

/// A webhook subscription: where a tenant's events of some types are POSTed.
/// `secret` is never serialized (it is shown once, when made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: String,
    pub tenant: String,
    pub url: String,
    /// Event type names; `["*"]` is every type.
    pub events: Vec<String>,
    #[serde(skip)]
    pub secret: String,
    pub created_at: String,
}

impl Webhook {
    /// Whether events of type `kind` go to this webhook.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind)
    }
}

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = webhooks, treat_none_as_default_value = false)]
struct HookRow {
    id: String,
    tenant: String,
    url: String,
    events: String,
    secret: String,
    created_at: String,
    deleted_at: Option<String>,
}

impl From<HookRow> for Webhook {
    fn from(r: HookRow) -> Webhook {
        Webhook {
            id: r.id,
            tenant: r.tenant,
            url: r.url,
            events: serde_json::from_str(&r.events).unwrap_or_default(),
            secret: r.secret,
            created_at: r.created_at,
        }
    }
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered with a 2xx: done.
    Delivered,
    /// Not delivered; another attempt follows.
    Failed,
    /// Not delivered, and no attempt follows (out of time): a dead letter.
    Dead,
    /// Not attempted: the webhook was deleted meanwhile.
    Dropped,
}

impl Outcome {
    /// As stored, and as the `outcome` label of
    /// `sprocket_webhook_deliveries_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Dead => "dead",
            Outcome::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "delivered" => Outcome::Delivered,
            "dead" => Outcome::Dead,
            "dropped" => Outcome::Dropped,
            _ => Outcome::Failed,
        }
    }
}

/// One delivery attempt of one event to one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub webhook_id: String,
    pub event_id: String,
    pub job_id: String,
    pub event_type: String,
    /// From 1.
    pub attempt: u32,
    pub outcome: Outcome,
    /// The HTTP status the destination answered, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was not delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries, treat_none_as_default_value = false)]
struct DeliveryRow {
    webhook_id: String,
    event_id: String,
    attempt: i32,
    job_id: String,
    event_type: String,
    outcome: String,
    status: Option<i32>,
    error: Option<String>,
    at: String,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Delivery {
        Delivery {
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            job_id: r.job_id,
            event_type: r.event_type,
            attempt: r.attempt.max(0) as u32,
            outcome: Outcome::parse(&r.outcome),
            status: r.status.map(|s| s.clamp(0, 999) as u16),
            error: r.error,
            at: r.at,
        }
    }
}

impl Projections {
    /// Stores a new webhook.
    pub fn insert_webhook(&self, hook: &Webhook) -> Result<(), ProjectionError> {
        let row = HookRow {
            id: hook.id.clone(),
            tenant: hook.tenant.clone(),
            url: hook.url.clone(),
            events: serde_json::to_string(&hook.events).expect("strings serialize"),
            secret: hook.secret.clone(),
            created_at: hook.created_at.clone(),
            deleted_at: None,
        };
        self.with_conn(|conn| {
            diesel::insert_into(webhooks::table)
                .values(&row)
                .execute(conn)
                .map(drop)
                .map_err(query("insert webhook"))
        })
    }

    /// The live webhooks (of `tenant`, when given), oldest first.
    pub fn webhooks(&self, tenant: Option<&str>) -> Result<Vec<Webhook>, ProjectionError> {
        self.with_conn(|conn| {
            let mut q = webhooks::table
                .filter(webhooks::deleted_at.is_null())
                .select(HookRow::as_select())
                .into_boxed();
            if let Some(t) = tenant {
                q = q.filter(webhooks::tenant.eq(t.to_owned()));
            }
            q.order((webhooks::created_at.asc(), webhooks::id.asc()))
                .load(conn)
                .map(|rows| rows.into_iter().map(Webhook::from).collect())
                .map_err(query("list webhooks"))
        })
    }

    /// The live webhook `id` (of `tenant`, when given).
    pub fn webhook(
        &self,
        id: &str,
        tenant: Option<&str>,
    ) -> Result<Option<Webhook>, ProjectionError> {
        self.with_conn(|conn| {
            let mut q = webhooks::table
                .filter(webhooks::id.eq(id))
                .filter(webhooks::deleted_at.is_null())
                .select(HookRow::as_select())
                .into_boxed();
            if let Some(t) = tenant {
                q = q.filter(webhooks::tenant.eq(t.to_owned()));
            }
            q.first(conn)
                .optional()
                .map(|r| r.map(Webhook::from))
                .map_err(query("find webhook"))
        })
    }

    /// Deletes webhook `id` (of `tenant`, when given) at `at`: no delivery is
    /// attempted for it afterwards. Whether there was such a live webhook.
    pub fn delete_webhook(
        &self,
        id: &str,
        tenant: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, ProjectionError> {
        let live = webhooks::table
            .filter(webhooks::id.eq(id.to_owned()))
            .filter(webhooks::deleted_at.is_null());
        let deleted = webhooks::deleted_at.eq(Some(timestamp(at)));
        self.with_conn(|conn| {
            match tenant {
                Some(t) => diesel::update(live.filter(webhooks::tenant.eq(t.to_owned())))
                    .set(deleted)
                    .execute(conn),
                None => diesel::update(live).set(deleted).execute(conn),
            }
            .map(|n| n == 1)
            .map_err(query("delete webhook"))
        })
    }

    /// Records an attempt; recording the same attempt again (a redelivery
    /// after a crash) keeps the first record.
    pub fn record_delivery(&self, d: &Delivery) -> Result<(), ProjectionError> {
        let row = DeliveryRow {
            webhook_id: d.webhook_id.clone(),
            event_id: d.event_id.clone(),
            attempt: d.attempt.min(i32::MAX as u32) as i32,
            job_id: d.job_id.clone(),
            event_type: d.event_type.clone(),
            outcome: d.outcome.as_str().to_owned(),
            status: d.status.map(i32::from),
            error: d.error.clone(),
            at: d.at.clone(),
        };
        self.with_conn(|conn| {
            use diesel::result::{DatabaseErrorKind, Error};
            match diesel::insert_into(webhook_deliveries::table)
                .values(&row)
                .execute(conn)
            {
                Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
                done => done.map(drop).map_err(query("record delivery")),
            }
        })
    }

    /// Webhook `id`'s latest `limit` attempts, newest first; only dead letters
    /// with `dead_only`.
    pub fn deliveries(
        &self,
        id: &str,
        dead_only: bool,
        limit: i64,
    ) -> Result<Vec<Delivery>, ProjectionError> {
        self.with_conn(|conn| {
            let mut q = webhook_deliveries::table
                .filter(webhook_deliveries::webhook_id.eq(id))
                .select(DeliveryRow::as_select())
                .into_boxed();
            if dead_only {
                q = q.filter(webhook_deliveries::outcome.eq(Outcome::Dead.as_str()));
            }
            q.order((
                webhook_deliveries::at.desc(),
                webhook_deliveries::attempt.desc(),
            ))
            .limit(limit)
            .load(conn)
            .map(|rows| rows.into_iter().map(Delivery::from).collect())
            .map_err(query("list deliveries"))
        })
    }
}
