//! The CDN OpenAPI's `DescribeCdnDomainLogs` (version 2018-05-10): which offline log files the
//! CDN holds for a domain and window, with their signed download paths.
//!
//! Two clocks meet here. The API takes and gives **UTC** (`StartTime`/`EndTime` as
//! `yyyy-MM-ddTHH:mm:ssZ`), while the file **names** carry the CDN's **UTC+8 wall clock**
//! (`example.com_2024_03_05_0800_0900.gz` starts at 00:00 UTC). The lake's keys (and so the
//! "is it done" check) derive from the name, as they do for an event; the API's times only
//! select the window. [`LogInfo::name_matches_times`] cross-checks the two.
//!
//! The API keeps 31 days of logs and pages its answer (`PageSize` up to 1000, `PageNumber`
//! from 1, `PageInfos.Total`); [`list_logs`] reads every page, up to the service's own count.

use crate::access::time::CDN_OFFSET_SECS;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;

use super::api::{ApiClient, Call};
use crate::access::filename::parse_file_name;
use crate::error::{Error, Result};
use crate::event::redact::redact_url;

/// The public endpoint (the API is global; it lives in cn-hangzhou).
pub const ENDPOINT: &str = "https://cdn.aliyuncs.com";
pub(crate) const VERSION: &str = "2018-05-10";
pub(crate) const ACTION: &str = "DescribeCdnDomainLogs";
/// The largest page the API gives.
pub(crate) const MAX_PAGE_SIZE: u32 = 1000;
/// Pages read at most for one domain and window: 1000 × 1000 files is 40 years of hourly
/// logs; past it the service is not behaving, and the listing fails rather than loop.
const MAX_PAGES: u32 = 1000;

/// One log file the CDN offers.
#[derive(Clone, PartialEq, Eq)]
pub struct LogInfo {
    /// The domain asked for (`DomainName`).
    pub domain: String,
    /// `LogName`, e.g. `example.com_2024_03_05_0800_0900.gz` (UTC+8 in the name).
    pub name: String,
    /// `LogPath`: signed, usually without a scheme. Secret until redacted.
    pub path: String,
    /// `LogSize`, bytes of the `.gz`.
    pub size: u64,
    /// `StartTime`/`EndTime`, UTC.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// By hand: the signed path must not reach a log line.
impl std::fmt::Debug for LogInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogInfo")
            .field("domain", &self.domain)
            .field("name", &self.name)
            .field("path", &redact_url(&self.path))
            .field("size", &self.size)
            .field("start", &self.start)
            .field("end", &self.end)
            .finish()
    }
}

impl LogInfo {
    /// The UTC instant the name's date and start hour mean (the name is UTC+8), when the name
    /// parses.
    pub(crate) fn name_start_utc(&self) -> Option<DateTime<Utc>> {
        let n = parse_file_name(&self.name)?;
        let hour: u32 = n.start.get(..2)?.parse().ok()?;
        let minute: u32 = n.start.get(2..4)?.parse().ok()?;
        let local = NaiveDate::from_ymd_opt(n.year as i32, n.month, n.day)?.and_hms_opt(
            hour.min(23),
            minute.min(59),
            0,
        )?;
        let beijing = chrono::FixedOffset::east_opt(CDN_OFFSET_SECS)?;
        beijing
            .from_local_datetime(&local)
            .single()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Whether the name's UTC+8 start and the API's UTC `StartTime` are the same hour. `None`
    /// when the name does not parse.
    pub(crate) fn name_matches_times(&self) -> Option<bool> {
        let from_name = self.name_start_utc()?;
        Some((from_name - self.start).num_minutes().abs() < 60)
    }
}

/// One page of the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub logs: Vec<LogInfo>,
    /// `PageInfos.Total`: files in the whole window, when the service says.
    pub total: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Body {
    domain_log_details: Option<Details>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Details {
    #[serde(default)]
    domain_log_detail: Vec<Detail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    domain_name: Option<String>,
    log_infos: Option<Infos>,
    page_infos: Option<PageInfos>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Infos {
    #[serde(default)]
    log_info_detail: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageInfos {
    total: Option<serde_json::Value>,
}

/// A number the service may send as a number or as a string.
fn number(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `2015-05-23T14:00:00Z`, or unix seconds (the DCDN variant of this API writes those).
fn instant(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    if let Some(s) = v.as_str() {
        if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
            return Some(t.with_timezone(&Utc));
        }
    }
    number(v).and_then(|secs| Utc.timestamp_opt(i64::try_from(secs).ok()?, 0).single())
}

/// Reads one page of `DescribeCdnDomainLogs`. Pure. A file entry without a usable name, path,
/// size or times is an error naming the entry and field: listing it without them would make
/// a file look done or missing when it is not.
pub(crate) fn parse_page(domain: &str, body: &[u8]) -> Result<Page> {
    let what = format!("{ACTION} answer for {domain}");
    let parsed: Body = serde_json::from_slice(body).map_err(|source| Error::Json {
        what: what.clone(),
        source,
    })?;
    let bad = |i: usize, field: &str, reason: &str| Error::Api {
        action: ACTION.into(),
        endpoint: String::new(),
        reason: format!("{what}: LogInfoDetail[{i}].{field}: {reason}"),
        retryable: false,
    };
    let mut logs = Vec::new();
    let mut total = None;
    for detail in parsed
        .domain_log_details
        .map(|d| d.domain_log_detail)
        .unwrap_or_default()
    {
        if let Some(t) = detail.page_infos.and_then(|p| p.total) {
            total = number(&t).or(total);
        }
        let domain = detail.domain_name.unwrap_or_else(|| domain.to_string());
        for (i, v) in detail
            .log_infos
            .map(|l| l.log_info_detail)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::trim);
            let name = s("LogName")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad(i, "LogName", "missing or empty"))?;
            let path = s("LogPath")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| bad(i, "LogPath", "missing or empty"))?;
            let size = v
                .get("LogSize")
                .and_then(number)
                .ok_or_else(|| bad(i, "LogSize", "missing or not a number"))?;
            let start = v
                .get("StartTime")
                .and_then(instant)
                .ok_or_else(|| bad(i, "StartTime", "missing or not a time"))?;
            let end = v
                .get("EndTime")
                .and_then(instant)
                .ok_or_else(|| bad(i, "EndTime", "missing or not a time"))?;
            logs.push(LogInfo {
                domain: domain.clone(),
                name: name.to_string(),
                path: path.to_string(),
                size,
                start,
                end,
            });
        }
    }
    Ok(Page { logs, total })
}

/// `yyyy-MM-ddTHH:mm:ssZ`, the form the API takes.
pub(crate) fn api_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Every log file of `domain` whose hour the API places in `[from, to)`, all pages read, each
/// name once (in the order of `StartTime`, then name).
///
/// The end of the list is the service's word, never a page's length: pages are read until
/// `PageInfos.Total` entries have come (a page shorter than `PageSize` is not the end; the
/// service may cap its pages), or, when the service gives no `Total`, until a page comes back
/// empty. An empty page before `Total` is reached, or a `Total` that changes between pages, is
/// an error for this domain, never a short success: `sync` exists to prove a window complete.
pub(crate) async fn list_logs(
    client: &ApiClient,
    domain: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    page_size: u32,
) -> Result<Vec<LogInfo>> {
    let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
    let (start, end, size) = (api_time(from), api_time(to), page_size.to_string());
    let mut out: Vec<LogInfo> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Entries received (duplicates included: the service counts them) and the service's count.
    let mut received: u64 = 0;
    let mut total: Option<u64> = None;
    for number in 1..=MAX_PAGES {
        let page_number = number.to_string();
        let query = [
            ("DomainName", domain),
            ("StartTime", start.as_str()),
            ("EndTime", end.as_str()),
            ("PageSize", size.as_str()),
            ("PageNumber", page_number.as_str()),
        ];
        let reply = client
            .call(
                &Call {
                    method: "GET",
                    path: "/",
                    query: &query,
                    action: ACTION,
                    version: VERSION,
                    content_type: None,
                    headers: &[],
                    body: b"",
                },
                |_| false,
            )
            .await?;
        let page = parse_page(domain, &reply.body).map_err(|e| match e {
            Error::Api {
                action,
                reason,
                retryable,
                ..
            } => Error::Api {
                action,
                endpoint: client.endpoint().to_string(),
                reason,
                retryable,
            },
            other => other,
        })?;
        let got = page.logs.len() as u64;
        received += got;
        for log in page.logs {
            if seen.insert(log.name.clone()) {
                out.push(log);
            }
        }
        tracing::debug!(domain, page = number, got, total = ?page.total, "listed a page");
        if number == 1 {
            total = page.total;
        }
        let fail = |reason: String| Error::Api {
            action: ACTION.into(),
            endpoint: client.endpoint().to_string(),
            reason: format!("{domain}: {reason}"),
            // Files come and go while a window is listed (a new hour lands, an old one
            // expires); a listing taken again is consistent.
            retryable: true,
        };
        if page.total != total {
            return Err(fail(format!(
                "PageInfos.Total changed from {} to {} on page {number}: the list moved while it was read",
                show(total),
                show(page.total)
            )));
        }
        // A page may be shorter than asked for (the service caps it): only the service's own
        // count, or without one an empty page, says the list has ended.
        let done = match total {
            Some(t) if received >= t => true,
            Some(t) if got == 0 => {
                return Err(fail(format!(
                    "page {number} is empty but PageInfos.Total says {t} and only {received} were listed"
                )))
            }
            Some(_) => false,
            None => got == 0,
        };
        if done {
            out.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.name.cmp(&b.name)));
            return Ok(out);
        }
    }
    Err(Error::Api {
        action: ACTION.into(),
        endpoint: client.endpoint().to_string(),
        reason: format!("{domain}: more than {MAX_PAGES} pages; narrow the window"),
        retryable: false,
    })
}

/// A `PageInfos.Total` as a message shows it.
fn show(total: Option<u64>) -> String {
    total.map_or_else(|| "none".to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of the documented answer, with a scheme-less `LogPath`, a size as a string and
    /// a split hour.
    const PAGE: &str = r#"{
      "RequestId": "16A96B9A-F203-4EC5-8E43-CB92E68F4CD8",
      "DomainLogDetails": {"DomainLogDetail": [{
        "DomainName": "example.com", "LogCount": 2,
        "PageInfos": {"PageIndex": 1, "PageSize": 2, "Total": 3},
        "LogInfos": {"LogInfoDetail": [
          {"LogName": "example.com_2015_05_23_2100_2200.gz",
           "LogPath": "cdnlog.cn-hangzhou.oss.aliyun-inc.com/example.com/2015_05_23/example.com_2015_05_23_2100_2200.gz?OSSAccessKeyId=AK&Expires=1&Signature=SIG",
           "LogSize": 258, "StartTime": "2015-05-23T13:00:00Z", "EndTime": "2015-05-23T14:00:00Z"},
          {"LogName": "example.com_2015_05_24_000000_010000_1.gz",
           "LogPath": "https://cdnlog.example/x_1.gz?Signature=SIG",
           "LogSize": "1024", "StartTime": "2015-05-23T16:00:00Z", "EndTime": "2015-05-23T17:00:00Z"}
        ]}
      }]}
    }"#;

    #[test]
    fn a_page_reads_and_names_are_utc_plus_8() {
        let p = parse_page("example.com", PAGE.as_bytes()).unwrap();
        assert_eq!(p.total, Some(3));
        assert_eq!(p.logs.len(), 2);
        assert_eq!(p.logs[0].size, 258);
        assert_eq!(p.logs[1].size, 1024);
        // 21:00 in the name is 13:00 UTC; 00:00 of the 24th is 16:00 UTC of the 23rd.
        assert_eq!(
            p.logs[0].name_start_utc().unwrap(),
            Utc.with_ymd_and_hms(2015, 5, 23, 13, 0, 0).unwrap()
        );
        assert_eq!(p.logs[0].name_matches_times(), Some(true));
        assert_eq!(
            p.logs[1].name_start_utc().unwrap(),
            Utc.with_ymd_and_hms(2015, 5, 23, 16, 0, 0).unwrap()
        );
        assert_eq!(p.logs[1].name_matches_times(), Some(true));
        // A name read as UTC would be 8 hours off: the check says so.
        let mut wrong = p.logs[0].clone();
        wrong.start = Utc.with_ymd_and_hms(2015, 5, 23, 21, 0, 0).unwrap();
        assert_eq!(wrong.name_matches_times(), Some(false));
        assert!(!format!("{:?}", p.logs[0]).contains("SIG"));
    }

    #[test]
    fn an_entry_without_size_is_an_error_naming_it() {
        let body = PAGE.replace(r#""LogSize": 258,"#, "");
        let e = parse_page("example.com", body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("LogInfoDetail[0].LogSize"), "{e}");
        let e = parse_page("example.com", b"{").unwrap_err();
        assert!(
            e.to_string().contains("DescribeCdnDomainLogs answer"),
            "{e}"
        );
        // No files: an empty page, not an error.
        let p = parse_page(
            "example.com",
            br#"{"RequestId":"x","DomainLogDetails":{"DomainLogDetail":[]}}"#,
        )
        .unwrap();
        assert!(p.logs.is_empty());
    }

    #[test]
    fn api_times_are_utc() {
        let t = DateTime::parse_from_rfc3339("2024-03-05T08:00:00+08:00").unwrap();
        assert_eq!(api_time(t.with_timezone(&Utc)), "2024-03-05T00:00:00Z");
    }
}
