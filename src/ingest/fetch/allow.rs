//! The allow-list of hosts a log may be fetched from, checked before any connection.

use reqwest::Url;

use crate::error::{Error, Result};
use crate::event::redact::{is_scheme_less_url, redact_url};

/// The hosts CDN delivers logs from.
pub const DEFAULT_ALLOWED_HOSTS: &str = "*.aliyuncs.com,*.aliyun-inc.com";

/// Hosts a log may be fetched from: exact names (or IP addresses) and `*.suffix` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<String>,
}

impl Default for AllowList {
    fn default() -> Self {
        AllowList::parse(DEFAULT_ALLOWED_HOSTS).unwrap_or(AllowList {
            patterns: Vec::new(),
        })
    }
}

impl AllowList {
    /// Parses comma-separated patterns (`*.aliyuncs.com,127.0.0.1`). A bare `*` or a pattern with
    /// a `*` elsewhere than a leading `*.` is refused: the list exists to be narrow.
    pub fn parse(s: &str) -> Result<AllowList> {
        AllowList::from_patterns(s.split(','))
    }

    /// Builds the list from patterns, each possibly comma-separated itself.
    pub fn from_patterns<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<AllowList> {
        let mut out = Vec::new();
        for p in patterns.into_iter().flat_map(|p| p.split(',')) {
            let p = p.trim().to_ascii_lowercase();
            if p.is_empty() {
                continue;
            }
            let body = p.strip_prefix("*.").unwrap_or(&p);
            if body.is_empty() || body.contains('*') || body.contains('/') || body.starts_with('.')
            {
                return Err(Error::Config {
                    setting: "allowed host",
                    value: p.clone(),
                    reason: "expected a host name, an IP address, or *.suffix".into(),
                });
            }
            out.push(p);
        }
        if out.is_empty() {
            return Err(Error::Config {
                setting: "allowed hosts",
                value: String::new(),
                reason: "the allow-list is empty".into(),
            });
        }
        Ok(AllowList { patterns: out })
    }

    /// Whether `host` (a name or an IP address, without port) is allowed. `*.suffix` matches any
    /// name ending in `.suffix` (not the bare suffix, and never an IP address).
    pub(crate) fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
        self.patterns.iter().any(|p| match p.strip_prefix("*.") {
            Some(suffix) => {
                !is_ip && host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}"))
            }
            None => host == *p,
        })
    }
}

/// Checks a URL before any connection: scheme, no credentials, host on the list.
///
/// A URL without a scheme whose first segment is a host (`host[:port]/path...`, see
/// [`is_scheme_less_url`]) is read as `https://`: the CDN API's `LogPath` comes that way and
/// OSS serves it over https. Anything else without `scheme://` (`file:/x`, `mailto:`, a
/// relative path) is parsed as it is and refused.
pub fn check_url(url: &str, allow: &AllowList) -> Result<Url> {
    let shown = redact_url(url);
    let refuse = |reason: String| Error::Refused {
        url: shown.clone(),
        reason,
    };
    let parsed = if is_scheme_less_url(url) {
        Url::parse(&format!("https://{url}"))
    } else {
        Url::parse(url)
    };
    let u = parsed.map_err(|e| refuse(format!("not a valid URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(refuse(format!(
            "scheme {:?} is not allowed (only http and https)",
            u.scheme()
        )));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(refuse("credentials in the URL are not allowed".into()));
    }
    let host = u.host_str().ok_or_else(|| refuse("no host".into()))?;
    if !allow.allows(host) {
        return Err(refuse(format!(
            "host {host} is not on the allow-list ({})",
            allow.patterns.join(",")
        )));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG_PATH: &str = "cdnlog.cn-hangzhou.oss.aliyun-inc.com/www.a.com/2024_03_05/www.a.com_2024_03_05_0800_0900.gz?OSSAccessKeyId=AK&Expires=1&Signature=SECRET";

    #[test]
    fn scheme_less_urls_are_https() {
        let a = AllowList::default();
        let u = check_url(LOG_PATH, &a).unwrap();
        assert_eq!(u.scheme(), "https");
        assert_eq!(u.host_str(), Some("cdnlog.cn-hangzhou.oss.aliyun-inc.com"));
        assert_eq!(
            u.path(),
            "/www.a.com/2024_03_05/www.a.com_2024_03_05_0800_0900.gz"
        );
        assert_eq!(
            u.query(),
            Some("OSSAccessKeyId=AK&Expires=1&Signature=SECRET")
        );
        let local = AllowList::from_patterns(["127.0.0.1"]).unwrap();
        let u = check_url("127.0.0.1:8080/a.gz", &local).unwrap();
        assert_eq!((u.scheme(), u.port()), ("https", Some(8080)));
    }

    #[test]
    fn scheme_less_urls_are_checked_like_others() {
        let a = AllowList::default();
        for bad in [
            // Not on the list, with or without a scheme.
            "evil.com/a.gz?Signature=SECRET",
            "127.0.0.1/a.gz",
            // Credentials, now as the https URL's.
            "u:SECRET@x.aliyuncs.com/a.gz",
            // Not scheme-less URLs: other schemes, no host.
            "file:/etc/passwd",
            "file:///etc/passwd",
            "mailto:ops@x.aliyuncs.com",
            "javascript:alert(1)//x.aliyuncs.com/",
            "x.aliyuncs.com",
            "logs/x.gz",
            "/x.aliyuncs.com/a.gz",
            "//x.aliyuncs.com/a.gz",
            "",
        ] {
            let e = check_url(bad, &a).unwrap_err().to_string();
            assert!(e.starts_with("refused"), "{bad}: {e}");
            assert!(!e.contains("SECRET"), "{bad}: {e}");
        }
        let e = check_url("u:SECRET@x.aliyuncs.com/a.gz", &a)
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials"), "{e}");
    }
}
