//! HTTP fetches on a user's behalf (ingest's `{"url": …}` sources), guarded
//! against server-side request forgery:
//!
//! * only `http` and `https`;
//! * every address is checked against an [`AddressPolicy`] (internal
//!   addresses refused unless configured), and the connection goes to a
//!   checked address: the client's resolver hands on only the addresses it
//!   checked, so a name cannot resolve to one address for the check and
//!   another for the connection (DNS rebinding); an IP-literal host is checked
//!   before the request. TLS still verifies the URL's host name;
//! * redirects are followed here, at most [`MAX_REDIRECTS`], each hop checked
//!   like the first;
//! * connect, read (idle) and overall time limits, and no proxy from the
//!   environment (a proxy would resolve the name itself, unchecked);
//! * a size limit on the streamed body;
//! * every refusal and every failure to reach a server is the same
//!   [`FetchError::Unreachable`], so that the fetcher cannot be used to map a
//!   network (which addresses are refused, which ports are open, what
//!   resolves). The real cause is logged at debug level, with the URL's
//!   credentials, query and fragment left out, as they are from every error.

mod address;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use url::{Host, Url};

pub use address::{is_global, AddressPolicy, Cidr, CidrError};

/// Most redirects followed from the URL asked for.
pub const MAX_REDIRECTS: usize = 5;

/// What a [`Fetcher`] allows, and how long it waits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Internal addresses that may be fetched from all the same.
    pub allow_private: Vec<Cidr>,
    /// Longest wait for a connection (name resolution included).
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes once connected: the response's head,
    /// and each read of the body.
    pub read_timeout: Duration,
    /// Longest a whole fetch may take, every redirect and the body included.
    pub total_timeout: Duration,
}

/// Why a fetch gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Refused (scheme, address, too many redirects) or not reached
    /// (resolution, connection, time limits): deliberately one error.
    #[error("the URL could not be fetched")]
    Unreachable,
    /// A permitted server answered with an error status.
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    /// The body is over the caller's limit.
    #[error("the response is {bytes} bytes or more, over the limit of {limit} bytes")]
    TooLarge { bytes: u64, limit: u64 },
}

impl FetchError {
    /// Whether trying again later may succeed. An unreachable URL is retried
    /// whatever the cause, because the causes must look alike.
    pub fn retryable(&self) -> bool {
        match self {
            FetchError::Unreachable => true,
            FetchError::Status(s) => {
                s.is_server_error()
                    || *s == reqwest::StatusCode::REQUEST_TIMEOUT
                    || *s == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            FetchError::TooLarge { .. } => false,
        }
    }
}

/// An HTTP client that fetches only what [`Settings`] allow. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    total_timeout: Duration,
}

impl Fetcher {
    pub fn new(settings: &Settings) -> Result<Fetcher, reqwest::Error> {
        let policy = Arc::new(AddressPolicy::new(settings.allow_private.clone()));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(address::CheckedResolver::new(policy.clone()))
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .build()?;
        Ok(Fetcher {
            client,
            policy,
            total_timeout: settings.total_timeout,
        })
    }

    /// Starts a GET of `url`, following redirects, and returns the body of a
    /// successful answer. A body announced or grown past `limit` bytes is
    /// [`FetchError::TooLarge`].
    pub async fn get(&self, url: &str, limit: u64) -> Result<Body, FetchError> {
        let deadline = Instant::now() + self.total_timeout;
        let mut url = Url::parse(url).map_err(|e| {
            tracing::debug!(cause = %e, "outbound fetch: not a URL");
            FetchError::Unreachable
        })?;
        for _ in 0..=MAX_REDIRECTS {
            self.check(&url)?;
            let resp = self
                .client
                .get(url.clone())
                .timeout(deadline.saturating_duration_since(Instant::now()))
                .send()
                .await
                .map_err(|e| unreachable(&url, causes(&e.without_url())))?;
            match redirect(&url, &resp) {
                Some(next) => url = next?,
                None => return Body::new(url, resp, limit),
            }
        }
        Err(unreachable(
            &url,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// POSTs `body` to `url` with `headers` (a webhook delivery): the status
    /// of a 2xx answer. No redirect is followed (a delivery goes where it was
    /// registered to go): a 3xx is an error status like any other. The
    /// answer's body is not read.
    pub async fn post(
        &self,
        url: &str,
        headers: reqwest::header::HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::StatusCode, FetchError> {
        let url = Url::parse(url).map_err(|e| {
            tracing::debug!(cause = %e, "outbound post: not a URL");
            FetchError::Unreachable
        })?;
        self.check(&url)?;
        let resp = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(body)
            .timeout(self.total_timeout)
            .send()
            .await
            .map_err(|e| unreachable(&url, causes(&e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            Ok(status)
        } else {
            tracing::debug!(url = %redacted(&url), %status, "outbound post: an error status");
            Err(FetchError::Status(status))
        }
    }

    /// The scheme, and the address of an IP-literal host (a host name's
    /// addresses are checked by the resolver, on every connection).
    fn check(&self, url: &Url) -> Result<(), FetchError> {
        match refusal(url, &self.policy) {
            Some(why) => Err(unreachable(url, why)),
            None => Ok(()),
        }
    }
}

/// Why `url` may not be fetched under `policy`, as far as the URL alone
/// tells: not http(s), no host, or an IP-literal host the policy refuses (a
/// host name is judged by the addresses it resolves to, at each
/// connection). For those who may say why, such as the API refusing a
/// webhook at creation; the fetcher itself does not.
pub fn refusal(url: &Url, policy: &AddressPolicy) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some("not an http(s) URL".into());
    }
    let ip: std::net::IpAddr = match url.host() {
        Some(Host::Domain(_)) => return None,
        Some(Host::Ipv4(a)) => a.into(),
        Some(Host::Ipv6(a)) => a.into(),
        None => return Some("no host".into()),
    };
    (!policy.permits(ip)).then(|| format!("{ip} is an internal address"))
}

/// Where a redirect answer points, if `resp` is one.
fn redirect(from: &Url, resp: &reqwest::Response) -> Option<Result<Url, FetchError>> {
    use reqwest::StatusCode as S;
    let moved = [
        S::MOVED_PERMANENTLY,
        S::FOUND,
        S::SEE_OTHER,
        S::TEMPORARY_REDIRECT,
        S::PERMANENT_REDIRECT,
    ];
    if !moved.contains(&resp.status()) {
        return None;
    }
    let location = resp.headers().get(reqwest::header::LOCATION)?;
    let next = location
        .to_str()
        .ok()
        .and_then(|l| from.join(l).ok())
        .ok_or_else(|| unreachable(from, "a redirect to an unreadable Location"));
    if let Ok(to) = &next {
        tracing::debug!(from = %redacted(from), to = %redacted(to), "outbound fetch: redirected");
    }
    Some(next)
}

/// A successful answer's body, read chunk by chunk within the size limit.
pub struct Body {
    url: Url,
    resp: reqwest::Response,
    read: u64,
    limit: u64,
}

impl Body {
    fn new(url: Url, resp: reqwest::Response, limit: u64) -> Result<Body, FetchError> {
        let status = resp.status();
        if !status.is_success() {
            tracing::debug!(url = %redacted(&url), %status, "outbound fetch: an error status");
            return Err(FetchError::Status(status));
        }
        if let Some(bytes) = resp.content_length().filter(|l| *l > limit) {
            return Err(FetchError::TooLarge { bytes, limit });
        }
        Ok(Body {
            url,
            resp,
            read: 0,
            limit,
        })
    }

    /// The length the server announced, if it did.
    pub fn content_length(&self) -> Option<u64> {
        self.resp.content_length()
    }

    /// The next chunk, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        let chunk = self
            .resp
            .chunk()
            .await
            .map_err(|e| unreachable(&self.url, causes(&e.without_url())))?;
        if let Some(c) = &chunk {
            self.read += c.len() as u64;
            if self.read > self.limit {
                return Err(FetchError::TooLarge {
                    bytes: self.read,
                    limit: self.limit,
                });
            }
        }
        Ok(chunk)
    }
}

/// Logs why `url` was not fetched, at debug level, and returns the one error
/// every such cause becomes.
fn unreachable(url: &Url, cause: impl std::fmt::Display) -> FetchError {
    tracing::debug!(url = %redacted(url), %cause, "outbound fetch: refused or unreachable");
    FetchError::Unreachable
}

/// `url` without its credentials, query and fragment, for logs.
fn redacted(url: &Url) -> String {
    sprocket_core::redact::for_the_record(url.as_str())
}

/// An error and its sources, `outer: inner: innermost`.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}
