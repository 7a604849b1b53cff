//! `GET /v1/jobs`: a page of the caller's jobs, newest first, filtered by
//! status, labels and submission time.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sprocket_core::JobStatus;
use sprocket_projections::JobFilter;

use super::super::error::{AuthErrors, ErrorBody};
use super::super::filters;
use super::super::view::JobPage;
use super::super::{ApiError, AppState, JobView};
use crate::auth::{Authorized, Read};

/// `GET /v1/jobs` query. `label` may be given more than once; every other
/// key at most once, and unknown keys are refused (400 `invalid_query`).
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs with this status.
    #[param(value_type = Option<JobStatus>)]
    status: Option<String>,
    /// Only jobs with this label, as `key=value`: the key is what comes before
    /// the first `=` (not empty), the value all after it (may be empty), both
    /// compared exactly. Repeat it for several labels: a job must have them all.
    #[param(style = Form, explode, value_type = Option<Vec<String>>, pattern = "^[^=]+=")]
    label: Option<Vec<String>>,
    /// Only jobs submitted at or after this time: RFC 3339 with an offset,
    /// e.g. `2025-06-01T00:00:00Z`.
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Page size, 1–500 (50 when absent; values outside are clamped).
    limit: Option<u32>,
    /// The `next` of the previous page (of the same filters).
    after: Option<String>,
}

impl ListQuery {
    /// Reads the query string's pairs as axum decoded them.
    fn from_pairs(pairs: Vec<(String, String)>) -> Result<ListQuery, ApiError> {
        fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), ApiError> {
            match slot.replace(value) {
                Some(_) => Err(ApiError::bad_request(
                    "invalid_query",
                    format!("{key} is given more than once"),
                )),
                None => Ok(()),
            }
        }
        let mut q = ListQuery::default();
        for (key, value) in pairs {
            match key.as_str() {
                "status" => once(&mut q.status, &key, value)?,
                "label" => q.label.get_or_insert_with(Vec::new).push(value),
                "since" => once(&mut q.since, &key, value)?,
                "after" => once(&mut q.after, &key, value)?,
                "limit" => {
                    let n = value.parse::<u32>().map_err(|e| {
                        ApiError::bad_request("invalid_query", format!("limit {value:?}: {e}"))
                    })?;
                    once(&mut q.limit, &key, n)?
                }
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_query",
                        format!(
                        "unknown query key {key:?}: expected status, label, since, limit or after"
                    ),
                    ))
                }
            }
        }
        Ok(q)
    }

    /// The listing filter the query asks for, for jobs of `tenant` (all
    /// tenants' when `None`).
    fn filter(&self, tenant: Option<String>) -> Result<JobFilter, ApiError> {
        let status = self.status.as_deref().map(filters::status).transpose()?;
        let labels = self
            .label
            .iter()
            .flatten()
            .map(|l| filters::label(l))
            .collect::<Result<_, _>>()?;
        let since = self
            .since
            .as_deref()
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        ApiError::bad_request(
                            "invalid_since",
                            format!("since {t:?} is not an RFC 3339 time ({e}): write e.g. 2025-06-01T00:00:00Z"),
                        )
                    })
            })
            .transpose()?;
        Ok(JobFilter {
            tenant,
            status,
            labels,
            since,
        })
    }
}

/// `GET /v1/jobs?status=&label=&since=&limit=&after=`: newest first,
/// keyset-paginated; the filters only thin the pages.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(ListQuery),
    responses(
        (status = 200, description = "One page of jobs", body = JobPage),
        (status = 400, description = "A bad query (unknown status or key, a key given twice, a label \
            not `key=value`, a `since` not RFC 3339, a bad number, a cursor no page handed out)", body = ErrorBody),
        AuthErrors,
        (status = 503, description = "The projections do not answer", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list(
    State(s): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = q?;
    let q = ListQuery::from_pairs(pairs)?;
    let filter = q.filter(caller.listing().map(str::to_owned))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let p = s.projections.clone();
    let page =
        tokio::task::spawn_blocking(move || p.jobs_where(&filter, limit, q.after.as_deref()))
            .await
            .map_err(ApiError::unavailable)??;
    let jobs: Vec<JobView> = page.items.iter().map(JobView::from).collect();
    Ok(Json(json!({"jobs": jobs, "next": page.next})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn filter(q: &[(&str, &str)]) -> Result<JobFilter, &'static str> {
        ListQuery::from_pairs(pairs(q))
            .and_then(|q| q.filter(Some("acme".into())))
            .map_err(|e| e.code)
    }

    #[test]
    fn labels_repeat_and_since_takes_any_offset() {
        let f = filter(&[
            ("label", "team=a"),
            ("status", "running"),
            ("label", "expr=x=y"),
            ("label", "empty="),
            ("since", "2025-06-01T02:00:00+02:00"),
        ])
        .unwrap();
        assert_eq!(
            f.labels,
            [("team", "a"), ("expr", "x=y"), ("empty", "")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(f.since.unwrap().to_rfc3339(), "2025-06-01T00:00:00+00:00");
        assert_eq!(f.status, Some(JobStatus::Running));
        assert_eq!(f.tenant.as_deref(), Some("acme"));
        assert_eq!(
            filter(&[]).unwrap(),
            JobFilter {
                tenant: Some("acme".into()),
                ..JobFilter::default()
            }
        );
    }

    #[test]
    fn bad_values_are_named_by_their_code() {
        for (q, code) in [
            (&[("label", "team")][..], "invalid_label"),
            (&[("label", "=a")], "invalid_label"),
            (&[("label", "team=a"), ("label", "")], "invalid_label"),
            (&[("since", "yesterday")], "invalid_since"),
            (&[("since", "2025-06-01")], "invalid_since"),
            (&[("since", "2025-06-01T00:00:00")], "invalid_since"),
            (&[("status", "bogus")], "invalid_status"),
            (
                &[("status", "queued"), ("status", "running")],
                "invalid_query",
            ),
            (
                &[
                    ("since", "2025-06-01T00:00:00Z"),
                    ("since", "2025-06-01T00:00:00Z"),
                ],
                "invalid_query",
            ),
            (&[("limit", "-1")], "invalid_query"),
            (&[("labels", "a=b")], "invalid_query"),
        ] {
            assert_eq!(filter(q), Err(code), "{q:?}");
        }
    }

    #[test]
    fn the_filters_are_documented() {
        let doc = serde_json::to_value(crate::api::openapi::document()).unwrap();
        let params = doc["paths"]["/v1/jobs"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let param = |name: &str| {
            params
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no {name} in {params:#?}"))
                .clone()
        };
        let label = param("label");
        assert_eq!(label["in"], "query");
        assert_eq!(label["required"], false);
        assert_eq!(label["style"], "form");
        assert_eq!(label["explode"], true);
        assert!(label["description"].as_str().unwrap().contains("key=value"));
        let since = param("since");
        assert!(since["schema"].to_string().contains("date-time"), "{since}");
        assert!(since["description"].as_str().unwrap().contains("RFC 3339"));
        for name in ["status", "limit", "after"] {
            param(name);
        }
    }
}
