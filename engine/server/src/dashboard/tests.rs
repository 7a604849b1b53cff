use axum::body::to_bytes;

use super::*;

fn asset(name: &str) -> &'static Asset {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no asset {name}"))
}

/// The files a file loads: `/ui/<name>` in the page, `./<name>` imports.
fn loads(a: &Asset) -> Vec<String> {
    let mut out = Vec::new();
    for (prefix, end) in [("/ui/", '"'), ("from './", '\'')] {
        for (i, _) in a.body.match_indices(prefix) {
            let rest = &a.body[i + prefix.len()..];
            out.push(rest[..rest.find(end).unwrap()].to_owned());
        }
    }
    out
}

/// Every file the page loads is served, and every served file is loaded:
/// a new module cannot be forgotten in `ASSETS`, nor an old one left there.
#[test]
fn the_page_loads_exactly_the_files_served() {
    let mut loaded = std::collections::BTreeSet::from(["index.html".to_owned()]);
    for a in &ASSETS {
        for name in loads(a) {
            assert!(
                ASSETS.iter().any(|x| x.name == name),
                "{} loads {name}, which is not served",
                a.name
            );
            loaded.insert(name);
        }
    }
    let served: std::collections::BTreeSet<String> =
        ASSETS.iter().map(|a| a.name.to_owned()).collect();
    assert_eq!(loaded, served);
}

/// The policy forbids inline script and style: none may be written, and no
/// page data may become markup (text only, never HTML strings).
#[test]
fn nothing_inline_and_no_html_from_strings() {
    let page = asset("index.html").body;
    for tag in page.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains(" src="), "inline <script{open}>");
        assert!(tag[tag.find('>').unwrap() + 1..].starts_with("</script>"));
    }
    for bad in [" style=", "<style", " onclick=", " onload=", "javascript:"] {
        assert!(!page.contains(bad), "index.html has {bad}");
    }
    for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        for bad in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setAttribute('style'",
        ] {
            assert!(!a.body.contains(bad), "{} uses {bad}", a.name);
        }
    }
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
}

#[test]
fn files_stay_small() {
    for a in &ASSETS {
        let lines = a.body.lines().count();
        assert!(lines <= 400, "{} has {lines} lines: split it", a.name);
    }
}

/// The choices the page offers are the core's.
#[test]
fn recipes_and_statuses_are_the_cores() {
    let quoted = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let recipes = format!(
        "RECIPES = [{}]",
        quoted(&sprocket_core::recipe::BUILTIN[..])
    );
    assert!(asset("submit.js").body.contains(&recipes), "{recipes}");
    let statuses: Vec<&str> = sprocket_core::JobStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let statuses = format!("STATUSES = [{}]", quoted(&statuses));
    assert!(asset("jobs.js").body.contains(&statuses), "{statuses}");
}

/// Only the page and its files: nothing here may shadow an API path.
#[test]
fn serves_only_the_page_and_its_files() {
    let src = include_str!("../dashboard.rs");
    let body = src.split("pub fn router<").nth(1).unwrap();
    let body = &body[..body.find("\n}\n").unwrap()];
    let paths: Vec<&str> = body
        .match_indices(".route(\"")
        .map(|(i, m)| {
            let rest = &body[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(paths, ["/", "/ui/{file}"]);
    assert!(!body.contains(".nest(") && !body.contains(".merge("));
}

#[tokio::test]
async fn answers_with_type_policy_and_revalidation() {
    let resp = index(HeaderMap::new()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    assert!(body.starts_with(b"<!doctype html>"));

    let js = file(Path("app.js".into()), HeaderMap::new()).await;
    assert_eq!(js.headers()[header::CONTENT_TYPE], JS);
    assert_eq!(
        js.headers()[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY
    );
    let css = file(Path("app.css".into()), HeaderMap::new()).await;
    assert_eq!(
        css.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );

    // A browser with the current copy gets 304 and no body; another copy, 200.
    let mut ask = HeaderMap::new();
    ask.insert(header::IF_NONE_MATCH, js.headers()[header::ETAG].clone());
    let again = file(Path("app.js".into()), ask).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(to_bytes(again.into_body(), 1 << 20)
        .await
        .unwrap()
        .is_empty());
    let mut old = HeaderMap::new();
    old.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"old\""));
    assert_eq!(
        file(Path("app.js".into()), old).await.status(),
        StatusCode::OK
    );

    for missing in ["nope.js", "index.html", "../dashboard.rs"] {
        let r = file(Path(missing.into()), HeaderMap::new()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
    }
}
