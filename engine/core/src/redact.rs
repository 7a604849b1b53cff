//! Keeping secrets out of what is printed, logged and recorded: passwords
//! in connection URLs, secret client properties, and the credentials and
//! query strings of source URLs (signed URLs carry their signature there).

/// `scheme://user:***@host…`: a URL with its password hidden.
pub fn password(url: &str) -> String {
    match split(url) {
        Some((scheme, Some(userinfo), rest)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{rest}"),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
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
