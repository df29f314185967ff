//! Time arithmetic for access lines, hand-written because it runs once per line.
//!
//! The log's time field looks like `9/Jun/2015:01:58:09 +0800`: the day is not zero-padded and the
//! offset is always present. We turn it into an instant (microseconds since the Unix epoch, UTC)
//! without any allocation or table lookup beyond the month name, and we derive partition values
//! (`dt`, `hour`) from an instant in a fixed partition offset.

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day) of a day number.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Number of days in a month of a year (Gregorian leap rules).
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Month number (1-12) of an English three-letter abbreviation, case as logged (`Jun`).
fn month_from_abbrev(m: &[u8]) -> Option<u32> {
    Some(match m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// English abbreviation of a month number (1-12), the inverse of the parser's table.
pub(crate) fn month_abbrev(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    NAMES[(month.clamp(1, 12) - 1) as usize]
}

#[inline]
fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a @ b'0'..=b'9', c @ b'0'..=b'9'] => Some(u32::from(a - b'0') * 10 + u32::from(c - b'0')),
        _ => None,
    }
}

/// Parses the inside of the bracketed time field (`9/Jun/2015:01:58:09 +0800`) into
/// microseconds since the epoch (UTC). Returns `None` when anything does not fit, including an
/// impossible date such as `31/Feb`.
pub(crate) fn parse_log_time(s: &[u8]) -> Option<i64> {
    // Day: one or two digits, then '/'.
    let (day, rest) = match s {
        [d @ b'0'..=b'9', b'/', rest @ ..] => (u32::from(d - b'0'), rest),
        [a @ b'0'..=b'9', b @ b'0'..=b'9', b'/', rest @ ..] => {
            (u32::from(a - b'0') * 10 + u32::from(b - b'0'), rest)
        }
        _ => return None,
    };
    // "Mon/yyyy:HH:MM:SS +hhmm" is exactly 23 bytes.
    if rest.len() != 23
        || rest[3] != b'/'
        || rest[8] != b':'
        || rest[11] != b':'
        || rest[14] != b':'
        || rest[17] != b' '
    {
        return None;
    }
    let month = month_from_abbrev(&rest[0..3])?;
    let year = i64::from(two_digits(&rest[4..6])? * 100 + two_digits(&rest[6..8])?);
    let hour = two_digits(&rest[9..11])?;
    let minute = two_digits(&rest[12..14])?;
    let second = two_digits(&rest[15..17])?;
    let sign: i64 = match rest[18] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off_h = two_digits(&rest[19..21])?;
    let off_m = two_digits(&rest[21..23])?;
    if day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
        || off_h > 23
        || off_m > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let offset = sign * i64::from(off_h * 3600 + off_m * 60);
    Some((local - offset) * 1_000_000)
}

/// Microseconds in a minute: the rollups' unit and the grain of every report window.
pub(crate) const MINUTE_MICROS: i64 = 60_000_000;
/// Microseconds in an hour: the CDN's delivery unit and a partition of an hour lake.
pub const HOUR_MICROS: i64 = 3_600_000_000;
/// Microseconds in a day: a partition of a day lake and a compacted day.
pub(crate) const DAY_MICROS: i64 = 86_400_000_000;
/// The CDN's wall clock, UTC+8, in seconds east of UTC: log file names, event times, and the
/// default partition zone (MaxCompute's default too).
pub(crate) const CDN_OFFSET_SECS: i32 = 8 * 3600;

/// A fixed UTC offset used to cut partitions (`dt`, `hour`), e.g. `+08:00` (the CDN's wall clock
/// and MaxCompute's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionTz {
    /// Seconds east of UTC.
    pub offset_secs: i32,
}

impl Default for PartitionTz {
    fn default() -> Self {
        PartitionTz {
            offset_secs: CDN_OFFSET_SECS,
        }
    }
}

impl PartitionTz {
    /// Accepts `+08:00`, `+0800`, `-05:30`, `+8`, `Z` and `UTC`.
    pub fn parse(s: &str) -> Option<PartitionTz> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
            return Some(PartitionTz { offset_secs: 0 });
        }
        let (sign, rest) = match t.as_bytes().first()? {
            b'+' => (1, &t[1..]),
            b'-' => (-1, &t[1..]),
            _ => return None,
        };
        // Digits (and one ':') only, so the byte-wise split below cannot cut a character.
        if !rest.bytes().all(|b| b.is_ascii_digit() || b == b':') {
            return None;
        }
        let (h, m) = match rest.split_once(':') {
            Some((h, m)) => (h, m),
            None if rest.len() == 4 => rest.split_at(2),
            None => (rest, "0"),
        };
        if h.is_empty() || h.len() > 2 || m.is_empty() || m.len() > 2 {
            return None;
        }
        let h: i32 = h.parse().ok()?;
        let m: i32 = m.parse().ok()?;
        if h > 14 || m > 59 {
            return None;
        }
        Some(PartitionTz {
            offset_secs: sign * (h * 3600 + m * 60),
        })
    }

    /// The hour bucket of an instant: hours since the epoch on this offset's wall clock.
    #[inline]
    pub(crate) fn hour_bucket(self, micros: i64) -> i64 {
        (micros.div_euclid(1_000_000) + i64::from(self.offset_secs)).div_euclid(3600)
    }

    /// `dt` (`YYYY-MM-DD`) and `hour` (`HH`) partition values of an hour bucket.
    pub(crate) fn partition_values(self, bucket: i64) -> (String, String) {
        let (y, m, d) = civil_from_days(bucket.div_euclid(24));
        (
            format!("{y:04}-{m:02}-{d:02}"),
            format!("{:02}", bucket.rem_euclid(24)),
        )
    }
}

impl std::fmt::Display for PartitionTz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.offset_secs < 0 { '-' } else { '+' };
        let a = self.offset_secs.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-800_000, -1, 0, 1, 16_595, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn parses_unpadded_day_and_offset() {
        // 2015-06-09 01:58:09 +08:00 == 2015-06-08T17:58:09Z == 1433786289
        assert_eq!(
            parse_log_time(b"9/Jun/2015:01:58:09 +0800"),
            Some(1_433_786_289_000_000)
        );
        assert_eq!(
            parse_log_time(b"09/Jun/2015:01:58:09 +0800"),
            Some(1_433_786_289_000_000)
        );
        assert_eq!(
            parse_log_time(b"8/Jun/2015:17:58:09 +0000"),
            Some(1_433_786_289_000_000)
        );
        assert_eq!(
            parse_log_time(b"8/Jun/2015:12:28:09 -0530"),
            Some(1_433_786_289_000_000)
        );
    }

    #[test]
    fn rejects_bad_times() {
        for bad in [
            &b"31/Feb/2015:01:58:09 +0800"[..],
            b"29/Feb/2015:01:58:09 +0800",
            b"9/Jun/2015:24:58:09 +0800",
            b"9/June/2015:01:58:09 +0800",
            b"9/Jun/2015:01:58:09 0800",
            b"9/Jun/2015:01:58:09 +08:00",
            b"9/Jun/2015 01:58:09 +0800",
            b"/Jun/2015:01:58:09 +0800",
            b"123/Jun/2015:01:58:09 +0800",
            b"",
        ] {
            assert_eq!(
                parse_log_time(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_log_time(b"29/Feb/2016:01:58:09 +0800").is_some());
    }

    #[test]
    fn partition_tz() {
        let tz = PartitionTz::parse("+08:00").unwrap();
        assert_eq!(tz, PartitionTz::default());
        assert_eq!(PartitionTz::parse("+0800"), Some(tz));
        assert_eq!(PartitionTz::parse("UTC").unwrap().offset_secs, 0);
        assert_eq!(PartitionTz::parse("-05:30").unwrap().offset_secs, -19_800);
        assert_eq!(PartitionTz::parse("08:00"), None);
        assert_eq!(PartitionTz::parse("+25:00"), None);
        assert_eq!(PartitionTz::parse("+1é2"), None);
        assert_eq!(PartitionTz::parse("+-1"), None);
        assert_eq!(tz.to_string(), "+08:00");
        // 2015-06-08T17:58:09Z is 2015-06-09 01h in +08:00.
        let b = tz.hour_bucket(1_433_786_289_000_000);
        assert_eq!(
            tz.partition_values(b),
            ("2015-06-09".to_string(), "01".to_string())
        );
    }
}
