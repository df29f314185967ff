//! Redaction of signed URLs: a log's `filePath` carries `OSSAccessKeyId`, `Signature` and
//! `Expires` in its query, which must never reach a log line, an error or the lake. Used by the
//! event archive and by the fetcher alike, so it sits below both.

use serde_json::Value;

pub(crate) fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// A URL safe to log or store: the query (`OSSAccessKeyId`, `Signature`, `Expires`,
/// `security-token`), the fragment and any `user:password@` are removed.
pub fn redact_url(url: &str) -> String {
    let base = strip_query(url);
    let redacted = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    };
    if base.len() < url.len() {
        format!("{redacted}?<redacted>")
    } else {
        redacted
    }
}

/// Every string that looks like a URL (`scheme://...`) with a query or credentials is redacted,
/// wherever it is (unknown events may carry signed URLs under other names).
pub fn redact_value(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains("://") => Value::String(redact_url(s)),
        Value::Array(a) => Value::Array(a.iter().map(redact_value).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), redact_value(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_credentials_go() {
        assert_eq!(
            redact_url("https://u:p@h.com/a/b.gz?Signature=x#f"),
            "https://h.com/a/b.gz?<redacted>"
        );
        assert_eq!(redact_url("http://h.com/a.gz"), "http://h.com/a.gz");
        let v = serde_json::json!({"a": ["http://h/x?Signature=s"], "b": 1});
        assert_eq!(
            redact_value(&v),
            serde_json::json!({"a": ["http://h/x?<redacted>"], "b": 1})
        );
    }
}
