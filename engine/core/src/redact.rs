//! Keeping secrets out of what is printed, logged and recorded: passwords
//! in connection URLs, secret client properties, and the credentials and
//! query strings of source URLs (signed URLs carry their signature there).

/// A connection string with its secrets hidden: the password of a URL's
/// user (`scheme://user:***@host…`), the value of every query parameter whose
/// name says it is a secret (`?password=***`, `sslpassword`, `token`…), and
/// in a libpq keyword/value string (`host=db password=***`) every secret
/// keyword's value.
pub fn password(url: &str) -> String {
    let Some((scheme, userinfo, rest)) = split(url) else {
        return keywords(url);
    };
    let user = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{u}@"),
        },
        None => String::new(),
    };
    format!("{scheme}://{user}{}", query(rest))
}

/// `rest` (after the authority's `@`) with its secret query values hidden.
fn query(rest: &str) -> String {
    let Some((path, after)) = rest.split_once('?') else {
        return rest.to_owned();
    };
    let (params, fragment) = match after.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (after, None),
    };
    let params: Vec<String> = params
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret(k) => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    let mut out = format!("{path}?{}", params.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A libpq keyword/value string with each secret keyword's value (bare, or
/// single-quoted with `\'` escapes) replaced by `***`.
fn keywords(conninfo: &str) -> String {
    let mut out = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    while let Some(eq) = rest.find('=') {
        let (head, after) = (&rest[..eq], &rest[eq + 1..]);
        let key = head
            .trim_end()
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or("");
        let value_len = value_len(after);
        out.push_str(head);
        out.push('=');
        if is_secret(key) {
            out.push_str("***");
        } else {
            out.push_str(&after[..value_len]);
        }
        rest = &after[value_len..];
    }
    out.push_str(rest);
    out
}

/// The length of a keyword's value at the start of `s`: up to the closing
/// quote when quoted, else up to the next whitespace.
fn value_len(s: &str) -> usize {
    let leading = s.len() - s.trim_start().len();
    let v = &s[leading..];
    if let Some(quoted) = v.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return leading + 1 + i + 1,
                _ => {}
            }
        }
        s.len()
    } else {
        leading + v.find(char::is_whitespace).unwrap_or(v.len())
    }
}

/// A URL as it may be recorded: no user, password, query or fragment.
pub fn for_the_record(url: &str) -> String {
    let Some((scheme, _, rest)) = split(url) else {
        return url.to_owned();
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}", &rest[..end])
}

/// Whether a configuration property's name says it holds a secret
/// (`sasl.password`, `ssl.key.password`, `sasl.oauthbearer.client.secret`,
/// `ssl.keystore.pem`-style private keys, tokens).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credential",
        "private",
        ".pem",
        "sasl.jaas",
    ]
    .iter()
    .any(|s| k.contains(s))
        || k.ends_with(".key")
}

/// `(scheme, userinfo, the rest after it)` of `scheme://[userinfo@]rest`.
fn split(url: &str) -> Option<(&str, Option<&str>, &str)> {
    let (scheme, after) = url.split_once("://")?;
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    match after[..authority_end].rfind('@') {
        Some(at) => Some((scheme, Some(&after[..at]), &after[at + 1..])),
        None => Some((scheme, None, after)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_records_lose_credentials_and_queries() {
        assert_eq!(
            password("postgres://app:s3cret@db:5432/sprocket"),
            "postgres://app:***@db:5432/sprocket"
        );
        assert_eq!(password("postgres://db/sprocket"), "postgres://db/sprocket");
        assert_eq!(password("sqlite://data/p.db"), "sqlite://data/p.db");
        assert_eq!(
            password("postgres://app@db/sprocket?sslmode=require&password=s3cret#x"),
            "postgres://app@db/sprocket?sslmode=require&password=***#x"
        );
        assert_eq!(
            password("s3://bucket/p?aws_secret_access_key=AbC&region=eu"),
            "s3://bucket/p?aws_secret_access_key=***&region=eu"
        );
        assert_eq!(
            password("host=db user=app password=s3cret dbname=sprocket"),
            "host=db user=app password=*** dbname=sprocket"
        );
        assert_eq!(
            password("host=db password = 'it\\'s a secret' sslpassword=k port=5432"),
            "host=db password =*** sslpassword=*** port=5432"
        );
        assert_eq!(password("host=db dbname=x"), "host=db dbname=x");
        for (url, kept) in [
            (
                "https://user:pw@cdn.example.com/a.mp4?X-Amz-Signature=abc#t=3",
                "https://cdn.example.com/a.mp4",
            ),
            (
                "https://cdn.example.com/a.mp4",
                "https://cdn.example.com/a.mp4",
            ),
            ("http://h:8080?token=x", "http://h:8080"),
            // An @ in the path is not credentials.
            ("https://h/a@b.mp4", "https://h/a@b.mp4"),
        ] {
            assert_eq!(for_the_record(url), kept, "{url}");
        }
    }

    #[test]
    fn secret_properties_are_recognised() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "sasl.oauthbearer.client.secret",
            "ssl.keystore.password",
            "ssl.key.pem",
            "ssl.key",
        ] {
            assert!(is_secret(k), "{k}");
        }
        for k in [
            "sasl.username",
            "security.protocol",
            "session.timeout.ms",
            "ssl.ca.location",
        ] {
            assert!(!is_secret(k), "{k}");
        }
    }
}
