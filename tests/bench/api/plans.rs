//! PostgreSQL's plans for the API's reads, run (`EXPLAIN ANALYZE`) at a page
//! deep in the table of the fill. The SQL is what `engine/projections/src/queries.rs`
//! builds, with the bind values written in.

use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use sprocket_projections::Projections;
use sprocket_tests::pg::PgDatabase;

/// A read and its plan.
pub struct Plan {
    pub name: &'static str,
    pub sql: String,
    pub plan: String,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    submitted_at: String,
    #[diesel(sql_type = Text)]
    id: String,
}

pub fn explain(db: &PgDatabase, p: &Projections) -> anyhow::Result<Vec<Plan>> {
    let mut conn = db.connect();
    anyhow::ensure!(
        !p.jobs(None, 1, None)?.items.is_empty(),
        "the fill wrote no jobs"
    );
    // A cursor nine tenths of the way down each listing.
    let mut deep = |status: Option<&str>| -> anyhow::Result<Key> {
        let filter = status.map_or(String::new(), |s| format!("WHERE status = '{s}'"));
        let sql = format!(
            "SELECT submitted_at, id FROM jobs {filter} ORDER BY submitted_at DESC, id DESC
             OFFSET (SELECT count(*) * 9 / 10 FROM jobs {filter}) LIMIT 1"
        );
        Ok(diesel::sql_query(sql).get_result::<Key>(&mut conn)?)
    };
    let all = deep(None)?;
    let running = deep(Some("running"))?;
    let page = |status: Option<&str>, k: &Key| {
        let filter = status.map_or(String::new(), |s| format!("(status = '{s}') AND "));
        format!(
            "SELECT submitted_at, id, state FROM jobs WHERE {filter}(submitted_at <= '{t}') \
             AND ((submitted_at < '{t}') OR ((submitted_at = '{t}') AND (id < '{id}'))) \
             ORDER BY submitted_at DESC, id DESC LIMIT 51",
            t = k.submitted_at,
            id = k.id
        )
    };
    let reads = [
        (
            "GET /v1/jobs/{id}",
            format!("SELECT state FROM jobs WHERE id = '{}' LIMIT 1", all.id),
        ),
        (
            "GET /v1/jobs?limit=50 (first page)",
            "SELECT submitted_at, id, state FROM jobs ORDER BY submitted_at DESC, id DESC LIMIT 51"
                .to_owned(),
        ),
        ("GET /v1/jobs?after= (9/10 down)", page(None, &all)),
        (
            "GET /v1/jobs?status=running&after= (9/10 down)",
            page(Some("running"), &running),
        ),
    ];
    let mut plans = Vec::new();
    for (name, sql) in reads {
        let lines: Vec<Line> =
            diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")).load(&mut conn)?;
        plans.push(Plan {
            name,
            sql,
            plan: lines
                .into_iter()
                .map(|l| l.line)
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok(plans)
}
