//! CDN log file names: `<domain>_<YYYY>_<MM>_<DD>_<start>_<end>[<sep><part>].gz`.
//!
//! Read from the right, because a domain may itself contain `_` or digits: the last groups are the
//! date and the hours (`HHMM` in older files, `HHMMSS` now), optionally followed by a part number
//! after `_` or `.` when a busy hour is split. Times are the CDN's UTC+8 wall clock.

/// What a CDN log file name tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileName {
    pub domain: String,
    pub year: u32,
    pub month: u32,
    pub day: u32,
    /// Start and end as written (`0800` or `080000`).
    pub start: String,
    pub end: String,
    /// The part suffix of a split hour (`1`, `2`, ...), when present.
    pub part: Option<String>,
}

impl LogFileName {
    /// `YYYY_MM_DD`, the date folder of the raw, rejects and manifest keys.
    pub(crate) fn date_folder(&self) -> String {
        format!("{:04}_{:02}_{:02}", self.year, self.month, self.day)
    }
}

/// The file name without a trailing `.gz` (the `<stem>` of the lake's keys).
pub fn stem(file_name: &str) -> &str {
    file_name.strip_suffix(".gz").unwrap_or(file_name)
}

fn digits(s: &str, len: usize) -> Option<u32> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn clock(s: &str) -> Option<()> {
    let ok = (s.len() == 4 || s.len() == 6)
        && s.bytes().all(|b| b.is_ascii_digit())
        && digits(&s[0..2], 2)? <= 24
        && digits(&s[2..4], 2)? <= 59
        && (s.len() == 4 || digits(&s[4..6], 2)? <= 59);
    ok.then_some(())
}

/// `<domain>_<YYYY>_<MM>_<DD>_<start>_<end>` with no part suffix.
fn parse_core(core: &str) -> Option<LogFileName> {
    let mut it = core.rsplitn(6, '_');
    let end = it.next()?;
    let start = it.next()?;
    let day = digits(it.next()?, 2)?;
    let month = digits(it.next()?, 2)?;
    let year = digits(it.next()?, 4)?;
    let domain = it.next()?;
    clock(start)?;
    clock(end)?;
    if domain.is_empty() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(LogFileName {
        domain: domain.to_string(),
        year,
        month,
        day,
        start: start.to_string(),
        end: end.to_string(),
        part: None,
    })
}

/// Parses a CDN log file name (the last path component). `None` when it is not in CDN style.
pub fn parse_file_name(file_name: &str) -> Option<LogFileName> {
    let s = stem(file_name);
    if let Some(n) = parse_core(s) {
        return Some(n);
    }
    let cut = s.rfind(['_', '.'])?;
    let part = &s[cut + 1..];
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n = parse_core(&s[..cut])?;
    n.part = Some(part.to_string());
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_and_new_styles() {
        let n = parse_file_name("www.aliyun.com_2017_12_27_0800_0900.gz").unwrap();
        assert_eq!(n.domain, "www.aliyun.com");
        assert_eq!((n.year, n.month, n.day), (2017, 12, 27));
        assert_eq!((n.start.as_str(), n.end.as_str()), ("0800", "0900"));
        assert_eq!(n.part, None);
        assert_eq!(n.date_folder(), "2017_12_27");
        let n = parse_file_name("cdn.example.com_2024_03_05_080000_090000.gz").unwrap();
        assert_eq!((n.start.as_str(), n.end.as_str()), ("080000", "090000"));
    }

    #[test]
    fn parts_with_either_separator() {
        let n = parse_file_name("a.example.com_2024_03_05_080000_090000_2.gz").unwrap();
        assert_eq!(n.part.as_deref(), Some("2"));
        assert_eq!(n.domain, "a.example.com");
        let n = parse_file_name("a.example.com_2024_03_05_0800_0900.12.gz").unwrap();
        assert_eq!(n.part.as_deref(), Some("12"));
    }

    #[test]
    fn domains_with_underscores_and_digits() {
        let n = parse_file_name("my_site_2024.example.com_2024_03_05_2300_0000.gz").unwrap();
        assert_eq!(n.domain, "my_site_2024.example.com");
        assert_eq!(n.end, "0000");
    }

    #[test]
    fn not_cdn_style() {
        for bad in [
            "access.log.gz",
            "_2024_03_05_0800_0900.gz",
            "x_2024_13_05_0800_0900.gz",
            "x_2024_03_05_08_09.gz",
            "x_2024_03_05_0800_0900_a.gz",
            "x_2024_03_05_0870_0900.gz",
            "",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn stems() {
        assert_eq!(stem("a_2024_03_05_0800_0900.gz"), "a_2024_03_05_0800_0900");
        assert_eq!(stem("access.log"), "access.log");
    }
}
