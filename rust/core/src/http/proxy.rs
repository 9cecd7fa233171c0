//! Which proxy a session uses: the `proxy` property, or else the
//! environment (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, in either case, as
//! curl reads them). The choice is made here, where it can be tested, and
//! handed to reqwest as explicit proxies (reqwest's own reading of the
//! environment is turned off).

use reqwest::{NoProxy, Proxy};
use url::Url;

use crate::redact;

/// Where a session's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyChoice {
    /// Straight to the servers.
    Direct,
    /// Every request (http and https) through this proxy; user info in the
    /// URL becomes `Proxy-Authorization: Basic` (and the CONNECT's for https).
    Fixed(Url),
    /// From the environment: a proxy per scheme of the target, and hosts that
    /// bypass both.
    Environment {
        /// For `http://` targets.
        http: Option<Url>,
        /// For `https://` targets (through CONNECT).
        https: Option<Url>,
        /// `NO_PROXY`: comma-separated hosts, domains (`.example.com`), IPs and CIDRs; `*` for all.
        no_proxy: Option<String>,
    },
}

/// What the `proxy` property says, with `env` to read the environment:
/// `""` reads it, `"direct"` uses none, anything else is the proxy's URL.
pub fn choose(setting: &str, env: impl Fn(&str) -> Option<String>) -> Result<ProxyChoice, String> {
    let setting = setting.trim();
    if setting.eq_ignore_ascii_case("direct") {
        return Ok(ProxyChoice::Direct);
    }
    if !setting.is_empty() {
        return parse("proxy", setting).map(ProxyChoice::Fixed);
    }
    // curl's order: the lower-case name first (`http_proxy` only in lower case
    // is the CGI-safe rule; games are not CGI scripts, so both are read).
    let read = |name: &str| {
        env(&name.to_ascii_lowercase()).or_else(|| env(name)).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    };
    let http = read("HTTP_PROXY").map(|v| parse("HTTP_PROXY", &v)).transpose()?;
    let https = read("HTTPS_PROXY").map(|v| parse("HTTPS_PROXY", &v)).transpose()?;
    if http.is_none() && https.is_none() {
        return Ok(ProxyChoice::Direct);
    }
    Ok(ProxyChoice::Environment { http, https, no_proxy: read("NO_PROXY") })
}

/// A proxy URL; a bare `host:port` means `http://host:port`, as curl reads it.
fn parse(source: &str, value: &str) -> Result<Url, String> {
    let with_scheme = if value.contains("://") { value.to_string() } else { format!("http://{value}") };
    let url = Url::parse(&with_scheme).map_err(|e| format!("{source} '{}' is not a proxy URL: {e}", redact(value)))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(url),
        "http" | "https" => Err(format!("{source} '{}' has no host", redact(value))),
        other => Err(format!("{source} '{}': only http and https proxies are supported, not {other}", redact(value))),
    }
}

impl ProxyChoice {
    /// The proxy a request to `target` goes through (`host:port`), and whether that is sure:
    /// `NO_PROXY` may let it bypass an environment proxy.
    pub fn route(&self, target: &str) -> Option<(String, bool)> {
        let scheme = Url::parse(target).ok()?.scheme().to_string();
        let (proxy, sure) = match self {
            ProxyChoice::Direct => return None,
            ProxyChoice::Fixed(url) => (url, true),
            ProxyChoice::Environment { http, https, no_proxy } => {
                (if scheme == "https" { https.as_ref() } else { http.as_ref() }?, no_proxy.is_none())
            }
        };
        Some((format!("{}:{}", proxy.host_str()?, proxy.port_or_known_default()?), sure))
    }

    /// The reqwest proxies that route as this choice says (none: direct).
    pub fn proxies(&self) -> Result<Vec<Proxy>, String> {
        let make = |url: &Url, build: fn(&str) -> reqwest::Result<Proxy>| {
            build(url.as_str()).map_err(|e| format!("proxy '{}': {e}", redact(url.as_str())))
        };
        Ok(match self {
            ProxyChoice::Direct => Vec::new(),
            ProxyChoice::Fixed(url) => vec![make(url, |u| Proxy::all(u))?],
            ProxyChoice::Environment { http, https, no_proxy } => {
                let bypass = || no_proxy.as_deref().and_then(NoProxy::from_string);
                let mut proxies = Vec::new();
                if let Some(url) = http {
                    proxies.push(make(url, |u| Proxy::http(u))?.no_proxy(bypass()));
                }
                if let Some(url) = https {
                    proxies.push(make(url, |u| Proxy::https(u))?.no_proxy(bypass()));
                }
                proxies
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_property_wins_over_the_environment() {
        let vars = [("HTTP_PROXY", "http://env:3128")];
        assert_eq!(choose("direct", env(&vars)).unwrap(), ProxyChoice::Direct);
        assert_eq!(choose(" DIRECT ", env(&vars)).unwrap(), ProxyChoice::Direct);
        let fixed = choose("http://user:pw@proxy:8080", env(&vars)).unwrap();
        assert_eq!(fixed, ProxyChoice::Fixed(Url::parse("http://user:pw@proxy:8080").unwrap()));
        assert_eq!(
            choose("proxy:3128", env(&[])).unwrap(),
            ProxyChoice::Fixed(Url::parse("http://proxy:3128").unwrap())
        );
    }

    #[test]
    fn the_environment_is_read_lower_case_first() {
        let vars = [("HTTP_PROXY", "http://upper:1"), ("http_proxy", "http://lower:2"), ("HTTPS_PROXY", "secure:3")];
        let ProxyChoice::Environment { http, https, no_proxy } = choose("", env(&vars)).unwrap() else {
            panic!("expected the environment")
        };
        assert_eq!(http.unwrap().as_str(), "http://lower:2/");
        assert_eq!(https.unwrap().as_str(), "http://secure:3/");
        assert_eq!(no_proxy, None);
        let vars = [("HTTPS_PROXY", "http://p:1"), ("no_proxy", "localhost,.internal")];
        let choice = choose("", env(&vars)).unwrap();
        assert!(
            matches!(&choice, ProxyChoice::Environment { http: None, no_proxy: Some(n), .. } if n == "localhost,.internal")
        );
        assert_eq!(choice.proxies().unwrap().len(), 1);
    }

    #[test]
    fn the_route_names_the_proxy_without_credentials() {
        let fixed = choose("http://user:secret@proxy.test:3128", env(&[])).unwrap();
        assert_eq!(fixed.route("https://example.com/"), Some(("proxy.test:3128".into(), true)));
        let vars = [("HTTP_PROXY", "p:1"), ("NO_PROXY", "localhost")];
        let from_env = choose("", env(&vars)).unwrap();
        assert_eq!(from_env.route("http://example.com/"), Some(("p:1".into(), false)));
        assert_eq!(from_env.route("https://example.com/"), None, "no HTTPS_PROXY");
        assert_eq!(choose("direct", env(&vars)).unwrap().route("http://example.com/"), None);
    }

    #[test]
    fn no_environment_means_direct_and_bad_values_are_named() {
        assert_eq!(choose("", env(&[("NO_PROXY", "*")])).unwrap(), ProxyChoice::Direct);
        assert_eq!(choose("", env(&[("HTTP_PROXY", "  ")])).unwrap(), ProxyChoice::Direct);
        let socks = choose("socks5://h:1", env(&[])).unwrap_err();
        assert!(socks.contains("only http and https proxies"), "{socks}");
        let bad = choose("", env(&[("HTTPS_PROXY", "http://user:secret@[oops")])).unwrap_err();
        assert!(bad.starts_with("HTTPS_PROXY") && !bad.contains("secret"), "{bad}");
    }
}
