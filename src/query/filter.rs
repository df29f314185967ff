//! What a report covers: a domain and a window of minutes.

/// Which rollup rows a report covers.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub domain: Option<String>,
    /// Inclusive start, microseconds since the epoch (compared with the minute's start).
    pub from_micros: Option<i64>,
    /// Exclusive end.
    pub to_micros: Option<i64>,
}

impl ReportFilter {
    /// Whether the minute starting at `minute` (micros) is in `[from, to)`.
    pub(crate) fn keeps_minute(&self, minute: i64) -> bool {
        self.from_micros.is_none_or(|f| minute >= f) && self.to_micros.is_none_or(|t| minute < t)
    }
}
