//! The redirect policy of a session: bounded, loops stopped at the first
//! repeat, every failure saying why. Credentials do not follow a redirect to
//! another origin: reqwest drops `Authorization`, `Cookie` and
//! `Proxy-Authorization` when the scheme, host or port changes (the tests
//! below hold it to that).

use reqwest::redirect::{Attempt, Policy};

use crate::redact;

/// Follows at most `max` redirects when `follow` is on; else none (a `3xx`
/// then completes as it is).
pub fn policy(follow: bool, max: usize) -> Policy {
    if !follow {
        return Policy::none();
    }
    Policy::custom(move |attempt| match judge(&attempt, max) {
        Ok(()) => attempt.follow(),
        Err(message) => attempt.error(message),
    })
}

fn judge(attempt: &Attempt<'_>, max: usize) -> Result<(), String> {
    let next = attempt.url();
    if attempt.previous().iter().any(|seen| seen == next) {
        return Err(format!("redirect loop: {} redirects back to {}", attempt.previous().len(), redact(next.as_str())));
    }
    if attempt.previous().len() > max {
        return Err(format!("more than {max} redirects (max_redirects), the last to {}", redact(next.as_str())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{HttpConfig, test_server::TestServer};

    fn client(config: HttpConfig) -> reqwest::Client {
        config.build_client(&super::super::proxy::ProxyChoice::Direct).unwrap()
    }

    #[tokio::test]
    async fn authorization_is_kept_on_the_same_origin_and_dropped_across_origins() {
        let other = TestServer::start().await;
        let origin = TestServer::start().await;
        let config =
            HttpConfig { headers: vec![("Authorization".into(), "Bearer s3cret".into())], ..HttpConfig::default() };
        let client = client(config);
        let same = client.get(origin.url(&format!("/redirect?to={}", origin.url("/echo")))).send().await.unwrap();
        assert_eq!(same.status(), 200);
        assert!(same.text().await.unwrap().contains("authorization: Bearer s3cret"));
        let cross = client.get(origin.url(&format!("/redirect?to={}", other.url("/echo")))).send().await.unwrap();
        assert_eq!(cross.url().port(), Some(other.addr.port()));
        let seen = cross.text().await.unwrap();
        assert!(!seen.to_ascii_lowercase().contains("authorization"), "{seen}");
    }

    #[tokio::test]
    async fn loops_and_long_chains_fail_with_their_reason() {
        let server = TestServer::start().await;
        let client = client(HttpConfig { max_redirects: 3, ..HttpConfig::default() });
        let looped = client.get(server.url("/loop")).send().await.unwrap_err();
        let text = super::super::error::chain(&looped);
        assert!(text.contains("redirect loop"), "{text}");
        let chain = client.get(server.url("/chain/5")).send().await.unwrap_err();
        let text = super::super::error::chain(&chain);
        assert!(text.contains("more than 3 redirects (max_redirects)"), "{text}");
        let short = client.get(server.url("/chain/3")).send().await.unwrap();
        assert_eq!(short.status(), 200);
        assert!(short.url().path().ends_with("/chain/0"));
        let off = HttpConfig { follow_redirects: false, ..HttpConfig::default() };
        let kept = self::client(off).get(server.url("/chain/1")).timeout(Duration::from_secs(5)).send().await.unwrap();
        assert_eq!(kept.status(), 302);
    }
}
