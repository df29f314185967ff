//! The self-healing deployment: FC's timer trigger calls `serve` every hour with a timer event,
//! and `serve` reconciles the last hours of the configured domains (`CDNLAKE_SYNC_DOMAINS`).
//!
//! By default each missing file becomes an asynchronous invocation of the function itself (its
//! name, version and region come from FC's request headers), so the timer's own invocation only
//! lists and checks, and stays far within its timeout whatever the backlog; each conversion then
//! runs in an instance of its own, as if the CDN had delivered the event. With `convert_here`
//! the timer's invocation converts the files itself (a small backlog, or no FC endpoint).

use crate::access::time::HOUR_MICROS;
use chrono::{Duration, Utc};
use futures::future::BoxFuture;

use super::{sync, InvokeTarget, Quiet, SyncOptions, PAGE_SIZE};
use crate::cloud::acs3;
use crate::cloud::api::ApiClient;
use crate::error::{Error, Result};
use crate::ingest::handler::HandlerOptions;
use crate::ingest::server::{FcContext, TimerEvent, TimerHandler};
use crate::lake::store::Lake;

/// Default window of a timer sync: the CDN delivers an hour's file within a few hours, and a
/// failure in the last two days is healed while there is ample time before the CDN's 30 days.
pub const DEFAULT_HOURS: u32 = 48;

/// What a timer event reconciles, set from `CDNLAKE_SYNC_*`.
#[derive(Debug, Clone)]
pub struct TimerSync {
    pub domains: Vec<String>,
    pub hours: u32,
    pub cdn_endpoint: String,
    /// FC endpoint; default the internal endpoint of the function's account and region.
    pub fc_endpoint: Option<String>,
    /// Function to invoke; default the one this instance runs (`x-fc-function-name`).
    pub function: Option<String>,
    /// Convert in this invocation instead of invoking the function per file.
    pub convert_here: bool,
    pub handler: HandlerOptions,
    /// API credentials when FC's headers bring none (local runs).
    pub credentials: Option<acs3::Credentials>,
}

/// A timer trigger's payload may narrow the configuration: `{"domains": ["a.com"], "hours": 6}`
/// (`domains` also as a comma-separated string).
fn apply_payload(mut cfg: TimerSync, payload: Option<&str>) -> Result<TimerSync> {
    let Some(p) = payload else { return Ok(cfg) };
    let bad = |reason: &str| Error::Config {
        setting: "timer payload",
        value: p.chars().take(200).collect(),
        reason: reason.into(),
    };
    let v: serde_json::Value = serde_json::from_str(p)
        .map_err(|_| bad("expected a JSON object like {\"domains\":[\"a.com\"],\"hours\":48}"))?;
    let o = v.as_object().ok_or_else(|| bad("expected a JSON object"))?;
    match o.get("domains") {
        None => {}
        Some(serde_json::Value::String(s)) => {
            cfg.domains = s
                .split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect()
        }
        Some(serde_json::Value::Array(a)) => {
            cfg.domains = a
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| bad("domains: expected strings"))
                })
                .collect::<Result<_>>()?
        }
        Some(_) => return Err(bad("domains: expected a list of names")),
    }
    if let Some(h) = o.get("hours") {
        cfg.hours = h
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .filter(|h| (1..=24 * 31).contains(h))
            .ok_or_else(|| bad("hours: expected 1 to 744"))?;
    }
    Ok(cfg)
}

impl TimerSync {
    async fn run(self, lake: Lake, fc: FcContext, event: TimerEvent) -> Result<Vec<u8>> {
        let cfg = apply_payload(self, event.payload.as_deref())?;
        if cfg.domains.is_empty() {
            return Err(Error::Config {
                setting: "CDNLAKE_SYNC_DOMAINS",
                value: String::new(),
                reason: "a timer event reconciles these domains; none is set".into(),
            });
        }
        let creds = fc
            .credentials
            .as_ref()
            .map(acs3::Credentials::from)
            .or_else(|| cfg.credentials.clone())
            .ok_or_else(|| Error::Config {
                setting: "credentials",
                value: String::new(),
                reason: "a timer sync calls the CDN API with the function's role (FC's x-fc-access-key-* headers); none came".into(),
            })?;
        let cdn = ApiClient::new(&cfg.cdn_endpoint, creds.clone())?;
        let invoke = if cfg.convert_here {
            None
        } else {
            let missing = |what: &str| {
                Error::Config {
                setting: "timer sync",
                value: String::new(),
                reason: format!("cannot invoke the function: {what} (or set CDNLAKE_SYNC_CONVERT=1 to convert in this instance)"),
            }
            };
            let function = cfg
                .function
                .clone()
                .or_else(|| fc.function.clone())
                .ok_or_else(|| {
                    missing("no x-fc-function-name header and no CDNLAKE_SYNC_FUNCTION")
                })?;
            let region = fc.region.clone().unwrap_or_else(|| "cn-hangzhou".into());
            let endpoint = match (&cfg.fc_endpoint, &fc.account_id) {
                (Some(e), _) => e.clone(),
                (None, Some(account)) => {
                    format!("https://{account}.{region}-internal.fc.aliyuncs.com")
                }
                (None, None) => {
                    return Err(missing(
                        "no x-fc-account-id header and no CDNLAKE_FC_ENDPOINT",
                    ))
                }
            };
            Some(InvokeTarget {
                client: ApiClient::new(&endpoint, creds)?,
                function,
                qualifier: fc.qualifier.clone(),
                region,
            })
        };
        let to = Utc::now();
        let opts = SyncOptions {
            domains: cfg.domains.clone(),
            from: to - Duration::hours(i64::from(cfg.hours)),
            to,
            jobs: 1,
            dry_run: false,
            page_size: PAGE_SIZE,
            handler: cfg.handler.clone(),
            invoke,
        };
        let report = sync(&lake, &cdn, &opts, &Quiet).await;
        compact_settled(&lake, &cfg.domains, to).await;
        tracing::info!(
            listed = report.listed,
            done = report.done,
            converted = report.converted,
            invoked = report.invoked,
            failed = report.failed,
            "timer sync"
        );
        if !report.ok() {
            let first = report
                .listing_errors
                .first()
                .map(|e| format!("listing {}: {}", e.domain, e.error))
                .or_else(|| {
                    report
                        .files
                        .iter()
                        .find(|f| f.action == super::Action::Failed)
                        .map(|f| format!("{}: {}", f.name, f.error.as_deref().unwrap_or("failed")))
                })
                .unwrap_or_default();
            return Err(Error::SyncIncomplete {
                reason: format!(
                    "{} of {} files failed, {} domain(s) not listed; first: {first}",
                    report.failed,
                    report.listed,
                    report.listing_errors.len()
                ),
            });
        }
        serde_json::to_vec(&report).map_err(|source| Error::Json {
            what: "sync report".into(),
            source,
        })
    }
}

/// Days the timer compacts: those that ended more than [`DEFAULT_HOURS`] ago (the window sync
/// still heals: a later file would make the day stale, read file by file until compacted
/// again), within the CDN's 30 days of logs. Older days are compacted by `cdnlake compact`.
pub(crate) const COMPACT_DAYS: i64 = 30;

/// Compacts the settled days of `domains` ([`COMPACT_DAYS`]). A failure is logged, not
/// returned: compaction only makes reports faster, and the next timer tries again.
pub(crate) async fn compact_settled(lake: &Lake, domains: &[String], now: chrono::DateTime<Utc>) {
    let from = (now - Duration::days(COMPACT_DAYS + 2))
        .format("%Y-%m-%d")
        .to_string();
    for domain in domains {
        let opts = crate::compact::CompactOptions {
            domain: Some(domain.clone()),
            from: Some(from.clone()),
            to: None,
            min_age_micros: i64::from(DEFAULT_HOURS) * HOUR_MICROS,
            now_micros: now.timestamp_micros(),
        };
        match crate::compact::compact(lake, &opts).await {
            Ok(r) => {
                tracing::info!(%domain, compacted = r.compacted, up_to_date = r.up_to_date, "timer compaction")
            }
            Err(e) => tracing::warn!(%domain, error = %e, "timer compaction failed"),
        }
        if compact_access_enabled() {
            match crate::compact::access::compact_access(lake, &opts).await {
                Ok(r) => {
                    tracing::info!(%domain, compacted = r.compacted, up_to_date = r.up_to_date, too_large = r.too_large, "timer access compaction")
                }
                Err(e) => tracing::warn!(%domain, error = %e, "timer access compaction failed"),
            }
        }
    }
}

/// Whether the timer also compacts the access objects of a day lake's settled days
/// (`CDNLAKE_COMPACT_ACCESS=1`). Off by default: on an object store the swap has a window in
/// which folder readers count a day twice, so an operator turns it on knowingly and schedules
/// the timer outside query hours (the days it compacts ended 48 hours ago or more).
pub fn compact_access_enabled() -> bool {
    std::env::var("CDNLAKE_COMPACT_ACCESS")
        .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
}

impl TimerHandler for TimerSync {
    fn handle(
        &self,
        lake: Lake,
        fc: FcContext,
        event: TimerEvent,
    ) -> BoxFuture<'static, Result<Vec<u8>>> {
        Box::pin(self.clone().run(lake, fc, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TimerSync {
        TimerSync {
            domains: vec!["a.com".into()],
            hours: DEFAULT_HOURS,
            cdn_endpoint: crate::cloud::cdn::ENDPOINT.into(),
            fc_endpoint: None,
            function: None,
            convert_here: false,
            handler: HandlerOptions::default(),
            credentials: None,
        }
    }

    #[test]
    fn a_payload_narrows_the_configuration() {
        let c = apply_payload(cfg(), Some(r#"{"domains":["b.com","c.com"],"hours":6}"#)).unwrap();
        assert_eq!(
            (c.domains, c.hours),
            (vec!["b.com".to_string(), "c.com".to_string()], 6)
        );
        let c = apply_payload(cfg(), Some(r#"{"domains":"d.com, e.com"}"#)).unwrap();
        assert_eq!(
            (c.domains, c.hours),
            (vec!["d.com".to_string(), "e.com".to_string()], 48)
        );
        let c = apply_payload(cfg(), None).unwrap();
        assert_eq!(c.domains, vec!["a.com".to_string()]);
        for bad in ["nope", "[1]", r#"{"hours":0}"#, r#"{"domains":[1]}"#] {
            let e = apply_payload(cfg(), Some(bad)).unwrap_err().to_string();
            assert!(e.contains("timer payload"), "{bad}: {e}");
        }
    }

    #[test]
    fn timer_events_are_told_from_cdn_events() {
        let t = TimerEvent::parse(
            br#"{"triggerTime":"2024-03-05T08:00:00Z","triggerName":"reconcile","payload":""}"#,
        )
        .unwrap();
        assert_eq!(t.trigger_name, "reconcile");
        assert_eq!(t.payload, None);
        assert!(
            TimerEvent::parse(br#"{"events":[],"triggerName":"x","triggerTime":"y"}"#).is_none()
        );
        assert!(TimerEvent::parse(br#"{"events":[]}"#).is_none());
        assert!(TimerEvent::parse(b"[").is_none());
    }
}
