//! A deterministic synthetic CDN log generator, for demos, tests and benchmarks.
//!
//! The same options always give the same bytes (its own SplitMix64 generator, so the output does
//! not change with a dependency's version). Lines carry the real-world variety of docs/design.md §1.3:
//! IPv4, IPv6 and masked clients, proxies, skewed URL popularity with query strings, http/https/
//! rtmp and bare-path URLs, status and HIT/MISS mixes, real-looking user agents (some with double
//! spaces or `\"`), `""` and `" "` fields, charsets, trailing extra fields, CRLF, empty lines, a
//! few bytes that are not UTF-8, a last line without newline, and optionally malformed lines.
//!
//! The generator also returns a [`GenSummary`] of what it wrote, which the tests compare with
//! what DuckDB reads back from the lake.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::access::time::{civil_from_days, month_abbrev, PartitionTz, CDN_OFFSET_SECS};

/// SplitMix64: tiny, fast, and stable forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One access line with owned fields: what the generator formats and the parser should give back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedLine {
    pub time_micros: i64,
    /// Offset written in the line, seconds east of UTC.
    pub offset_secs: i32,
    pub client_ip: String,
    pub proxy_ip: Option<String>,
    pub response_time_ms: i64,
    pub referer: Option<String>,
    pub method: String,
    pub url: String,
    pub status: i32,
    pub request_bytes: i64,
    pub response_bytes: i64,
    pub cache_status: Option<String>,
    pub user_agent: String,
    pub content_type: String,
    pub extra: Option<String>,
}

/// Formats a line in the CDN's format (without a line terminator).
pub fn format_line(l: &OwnedLine, out: &mut Vec<u8>) {
    let local = l.time_micros.div_euclid(1_000_000) + i64::from(l.offset_secs);
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let sod = local.rem_euclid(86_400);
    let sign = if l.offset_secs < 0 { '-' } else { '+' };
    let off = l.offset_secs.unsigned_abs();
    let _ = write!(
        out,
        "[{d}/{}/{y:04}:{:02}:{:02}:{:02} {sign}{:02}{:02}] {} {} {} \"{}\" \"{} {}\" {} {} {} {} \"{}\" \"{}\"",
        month_abbrev(m),
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60,
        off / 3600,
        (off % 3600) / 60,
        l.client_ip,
        l.proxy_ip.as_deref().unwrap_or("-"),
        l.response_time_ms,
        l.referer.as_deref().unwrap_or("-"),
        l.method,
        l.url,
        l.status,
        l.request_bytes,
        l.response_bytes,
        l.cache_status.as_deref().unwrap_or("-"),
        l.user_agent,
        l.content_type,
    );
    if let Some(e) = &l.extra {
        out.push(b' ');
        out.extend_from_slice(e.as_bytes());
    }
}

/// Generator settings.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Total lines written, empty and malformed ones included.
    pub lines: u64,
    pub seed: u64,
    pub domain: String,
    /// Time of the first line (microseconds since the epoch).
    pub start_micros: i64,
    /// Seconds between the first and the last line.
    pub span_secs: i64,
    /// Share of malformed lines (rejected by the parser).
    pub bad_fraction: f64,
    /// Time zone of the partitions the summary counts per.
    pub tz: PartitionTz,
    /// Values as varied as a busy domain's ([`HIGH_PATHS`] paths and [`HIGH_CLIENTS`] client IPs
    /// with Zipf popularity, thousands of user agents): dictionaries overflow and the heavy-hitter
    /// summaries cut, as on a real hour. Off: a few thousand paths, the default since the tests
    /// were written against it (its bytes never change).
    pub high_cardinality: bool,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            lines: 5000,
            seed: 1,
            domain: "cdn.example.com".into(),
            // 2024-03-05T08:30:00+08:00: the default span of an hour crosses into the next hour.
            start_micros: 1_709_598_600_000_000,
            span_secs: 3599,
            bad_fraction: 0.0,
            tz: PartitionTz::default(),
            high_cardinality: false,
        }
    }
}

/// What the generator wrote, for comparing with what the lake holds.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GenSummary {
    pub lines: u64,
    pub rows: u64,
    pub empty: u64,
    /// Line numbers of the malformed lines.
    pub rejected_lines: Vec<u64>,
    pub invalid_utf8: u64,
    pub sum_response_bytes: i64,
    pub per_status: BTreeMap<i32, u64>,
    /// `-` counts under `null`.
    pub per_cache_status: BTreeMap<String, u64>,
    /// `YYYY-MM-DD/HH` -> rows.
    pub per_partition: BTreeMap<String, u64>,
    pub bytes: u64,
}

const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.43(0x18002b2c) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; SM-S9180) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; ExampleBot/1.0)",
    "okhttp/4.11.0",
    "curl/8.4.0",
    "Dalvik/2.1.0 (Linux; U; Android 12; V2145A Build/SP1A.210812.003)",
    "AppleCoreMedia/1.0.0.21A351 (iPhone; U; CPU OS 17_0_3 like Mac OS X; zh_cn)",
    "Mozilla/5.0  (Windows NT 6.1;  WOW64) Trident/7.0",
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) \\\"quoted\\\" AppleWebKit/605.1.15",
];

const EXTS: &[(&str, &str)] = &[
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("webp", "image/webp"),
    ("js", "application/javascript"),
    ("css", "text/css; charset=utf-8"),
    ("html", "text/html; charset=UTF-8"),
    ("mp4", "video/mp4"),
    ("m3u8", "application/vnd.apple.mpegurl"),
    ("ts", "video/mp2t"),
    ("json", "application/json;charset=utf-8"),
    ("apk", "application/vnd.android.package-archive"),
    ("woff2", "font/woff2"),
];

const STATUSES: &[(i32, u32)] = &[
    (200, 8000),
    (206, 600),
    (304, 500),
    (404, 400),
    (403, 150),
    (301, 100),
    (302, 50),
    (499, 50),
    (500, 60),
    (502, 50),
    (503, 30),
    (504, 10),
];

fn weighted(rng: &mut Rng, table: &[(i32, u32)]) -> i32 {
    let total: u32 = table.iter().map(|t| t.1).sum();
    let mut r = rng.below(u64::from(total)) as u32;
    for &(v, w) in table {
        if r < w {
            return v;
        }
        r -= w;
    }
    table[0].0
}

/// A pool of paths; popularity is skewed so a few paths take most requests.
fn path_pool(rng: &mut Rng, n: usize) -> Vec<(String, usize)> {
    const DIRS: &[&str] = &[
        "static",
        "img",
        "video",
        "assets",
        "api/v1",
        "download",
        "live",
        "cdn/2024/03",
    ];
    (0..n)
        .map(|i| {
            let ext = rng.below(EXTS.len() as u64) as usize;
            let dir = rng.pick(DIRS);
            let name = format!("{:x}", rng.next_u64() & 0xffff_ffff);
            (format!("/{dir}/{name}_{i}.{}", EXTS[ext].0), ext)
        })
        .collect()
}

fn ipv4(rng: &mut Rng) -> String {
    let v = rng.next_u64();
    format!(
        "{}.{}.{}.{}",
        1 + (v & 0xff) % 223,
        (v >> 8) & 0xff,
        (v >> 16) & 0xff,
        1 + ((v >> 24) & 0xff) % 254
    )
}

fn ipv6(rng: &mut Rng) -> String {
    let v = rng.next_u64();
    format!(
        "240e:{:x}:{:x}::{:x}",
        (v >> 48) & 0xffff,
        (v >> 32) & 0xffff,
        v & 0xffff
    )
}

/// Distinct paths of the high-cardinality mode (popularity Zipf, exponent 1).
pub(crate) const HIGH_PATHS: u64 = 2_000_000;
/// Distinct client IPs of the high-cardinality mode.
pub(crate) const HIGH_CLIENTS: u64 = 1_000_000;
/// User agents of the high-cardinality mode (popularity Zipf): real families with their versions,
/// device models and app tokens, as a busy mobile domain logs them.
const HIGH_UAS: u64 = 50_000;

/// A rank in [0, n) with P(rank < x) ≈ ln(x)/ln(n): the continuous Zipf law of exponent 1, drawn
/// by inverting its CDF (no table, so n may be millions).
fn zipf(rng: &mut Rng, n: u64) -> u64 {
    ((n as f64).powf(rng.unit()) as u64)
        .saturating_sub(1)
        .min(n - 1)
}

/// The values of the high-cardinality mode: each rank always gives the same value (a hash of the
/// seed and the rank), so popularity, not a stored pool, decides what repeats.
struct HighCardinality {
    seed: u64,
}

impl HighCardinality {
    fn rng(&self, kind: u64, rank: u64) -> Rng {
        Rng::new(
            self.seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(kind << 56)
                ^ rank.wrapping_mul(0xBF58_476D_1CE4_E5B9),
        )
    }

    fn path(&self, rank: u64) -> (String, usize) {
        const DIRS: &[&str] = &[
            "static",
            "img",
            "video",
            "assets",
            "api/v1",
            "api/v2",
            "download",
            "live",
            "upload",
            "cdn/2024/03",
            "m/item",
            "p/detail",
            "s/sku",
            "vod/hls",
            "u/avatar",
        ];
        let mut r = self.rng(1, rank);
        let ext = r.below(EXTS.len() as u64) as usize;
        let dir = r.pick(DIRS);
        let path = match r.below(4) {
            0 => format!(
                "/{dir}/{:x}/{rank}.{}",
                r.next_u64() & 0xff_ffff,
                EXTS[ext].0
            ),
            1 => format!("/{dir}/{:016x}.{}", r.next_u64(), EXTS[ext].0),
            2 => format!(
                "/{dir}/{}/{:x}_{}x{}.{}",
                rank % 997,
                r.next_u64() & 0xffff_ffff,
                [320, 640, 750, 1080][r.below(4) as usize],
                [240, 480, 1334, 1920][r.below(4) as usize],
                EXTS[ext].0
            ),
            _ => format!("/{dir}/{rank}/index.{}", EXTS[ext].0),
        };
        (path, ext)
    }

    fn client(&self, rank: u64) -> String {
        let mut r = self.rng(2, rank);
        match r.below(100) {
            0..=74 => ipv4(&mut r),
            75..=94 => ipv6(&mut r),
            _ => format!("139.224.XXX.{}", r.below(255)),
        }
    }

    fn user_agent(&self, rank: u64) -> String {
        const MODELS: &[&str] = &[
            "SM-S9180",
            "SM-G9910",
            "V2145A",
            "PGT-AN10",
            "22081212C",
            "M2012K11AC",
            "LIO-AN00",
            "NOH-AL00",
            "ANA-AN00",
            "PDEM10",
            "RMX3350",
            "2201123C",
            "CPH2451",
            "ALN-AL00",
        ];
        const APPS: &[&str] = &[
            "",
            " MicroMessenger/8.0.43.2480(0x28002B37)",
            " AlipayClient/10.5.36",
            " aweme_27.1.0",
            " NewsArticle/9.4.0",
            " baiduboxapp/13.40.0.10",
        ];
        if rank < UAS.len() as u64 {
            return UAS[rank as usize].to_string();
        }
        let mut r = self.rng(3, rank);
        let chrome = format!(
            "{}.0.{}.{}",
            100 + r.below(32),
            4896 + r.below(2000),
            r.below(200)
        );
        match r.below(5) {
            0 => format!(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{chrome} Safari/537.36"
            ),
            1 | 2 => format!(
                "Mozilla/5.0 (Linux; Android {}; {} Build/{}.{}.{}; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/{chrome} Mobile Safari/537.36{}",
                9 + r.below(6),
                r.pick(MODELS),
                ["TP1A", "SP1A", "RKQ1", "UKQ1"][r.below(4) as usize],
                220_000 + r.below(30_000),
                r.below(20),
                r.pick(APPS)
            ),
            3 => format!(
                "Mozilla/5.0 (iPhone; CPU iPhone OS {}_{} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148{} NetType/{} Language/zh_CN",
                14 + r.below(4),
                r.below(8),
                r.pick(APPS),
                ["WIFI", "4G", "5G"][r.below(3) as usize]
            ),
            _ => format!(
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{}.{} Safari/605.1.15",
                r.below(8),
                14 + r.below(4),
                r.below(7)
            ),
        }
    }
}

/// Writes the generated log to `out` (plain text; wrap `out` in a gzip encoder for `.gz`).
pub fn generate(opts: &GenOptions, out: &mut impl Write) -> std::io::Result<GenSummary> {
    let mut rng = Rng::new(opts.seed);
    let pool = path_pool(&mut rng, 5000);
    let high = opts
        .high_cardinality
        .then_some(HighCardinality { seed: opts.seed });
    let mut s = GenSummary::default();
    let mut line = Vec::with_capacity(1024);
    let n = opts.lines;
    let step = if n > 1 {
        opts.span_secs as f64 * 1e6 / (n - 1) as f64
    } else {
        0.0
    };
    let offset = CDN_OFFSET_SECS;
    for i in 0..n {
        let number = i + 1;
        line.clear();
        let last = i + 1 == n;
        if rng.chance(0.001) && !last {
            s.lines += 1;
            s.empty += 1;
            out.write_all(if rng.chance(0.5) { b"\n" } else { b"\r\n" })?;
            continue;
        }
        let time_micros = opts.start_micros + (i as f64 * step) as i64 / 1_000_000 * 1_000_000;
        let high_path;
        let (path, ext) = match &high {
            Some(h) => {
                high_path = h.path(zipf(&mut rng, HIGH_PATHS));
                (&high_path.0, &high_path.1)
            }
            None => {
                let (p, e) =
                    &pool[((rng.unit().powi(3)) * pool.len() as f64) as usize % pool.len()];
                (p, e)
            }
        };
        let query = match rng.below(10) {
            0..=5 => String::new(),
            6 | 7 => format!("?v={}", rng.below(1000)),
            8 => format!(
                "?auth_key={}-0-0-{:x}&t={}",
                time_micros / 1_000_000,
                rng.next_u64(),
                rng.below(99)
            ),
            _ => format!("?u=http://x.example.org/r?a={}", rng.below(50)),
        };
        let host = &opts.domain;
        let url = match rng.below(100) {
            0..=64 => format!("http://{host}{path}{query}"),
            65..=84 => format!("https://{host}{path}{query}"),
            85..=95 => format!("{path}{query}"),
            96..=97 => format!("rtmp://{host}/live/stream{}", rng.below(5)),
            _ => format!("http://{host}"),
        };
        let method = match rng.below(100) {
            0..=91 => "GET",
            92..=95 => "HEAD",
            96..=98 => "POST",
            _ => "OPTIONS",
        };
        let mut ua = match &high {
            Some(h) => h.user_agent(zipf(&mut rng, HIGH_UAS)),
            None => rng.pick(UAS).to_string(),
        };
        if rng.chance(0.02) {
            ua.clear();
        }
        let ct = if rng.chance(0.02) {
            " ".to_string()
        } else {
            EXTS[*ext].1.to_string()
        };
        let status = weighted(&mut rng, STATUSES);
        let response_bytes = if rng.chance(0.0005) {
            (1i64 << 31) + rng.below(1 << 33) as i64
        } else {
            (rng.unit().powi(4) * 5_000_000.0) as i64
        };
        let l = OwnedLine {
            time_micros,
            offset_secs: offset,
            client_ip: match (&high, rng.below(100)) {
                // Most clients come back a few times, a few often (crawlers, NAT gateways).
                (Some(h), 0..=69) => h.client(rng.below(HIGH_CLIENTS)),
                (Some(h), _) => h.client(zipf(&mut rng, HIGH_CLIENTS)),
                (None, v) => match v {
                    0..=69 => ipv4(&mut rng),
                    70..=89 => ipv6(&mut rng),
                    90..=94 => format!(
                        "139.224.XXX.{}",
                        if rng.chance(0.5) {
                            "XXX".to_string()
                        } else {
                            rng.below(255).to_string()
                        }
                    ),
                    _ => format!(
                        "10.{}.{}.{}",
                        rng.below(255),
                        rng.below(255),
                        rng.below(255)
                    ),
                },
            },
            proxy_ip: rng.chance(0.1).then(|| ipv4(&mut rng)),
            response_time_ms: (rng.unit().powi(2) * 3000.0) as i64,
            referer: match rng.below(100) {
                0..=49 => None,
                v @ 50..=79 if high.is_some() => Some(format!(
                    "https://www.{host}/p/{}",
                    zipf(&mut rng, HIGH_PATHS / 4) * 100 + v
                )),
                50..=79 => Some(format!("https://www.{host}/page/{}", rng.below(40))),
                80..=84 => Some("_".to_string()),
                85..=86 => Some(String::new()),
                _ => Some(format!("https://www.search.example/s?q={}", rng.below(500))),
            },
            method: method.to_string(),
            url,
            status,
            request_bytes: 100 + rng.below(700) as i64,
            response_bytes,
            cache_status: match rng.below(100) {
                0..=74 => Some("HIT".to_string()),
                75..=97 => Some("MISS".to_string()),
                _ => None,
            },
            user_agent: ua,
            content_type: ct,
            extra: match rng.below(100) {
                0..=2 => Some("HTTP/1.1".to_string()),
                3 => Some(format!("https {}", ipv6(&mut rng))),
                _ => None,
            },
        };
        format_line(&l, &mut line);
        if opts.bad_fraction > 0.0 && rng.chance(opts.bad_fraction) {
            corrupt(&mut rng, &mut line);
            s.rejected_lines.push(number);
        } else {
            if rng.chance(0.0005) {
                // A byte that is not UTF-8 inside the user agent: kept lossy, still a row.
                if let Some(p) = line.windows(9).position(|w| w == b"Mozilla/5") {
                    line[p + 7] = 0xff;
                    s.invalid_utf8 += 1;
                }
            }
            s.rows += 1;
            s.sum_response_bytes += l.response_bytes;
            *s.per_status.entry(l.status).or_default() += 1;
            *s.per_cache_status
                .entry(l.cache_status.clone().unwrap_or_else(|| "null".into()))
                .or_default() += 1;
            let (dt, hour) = opts.tz.partition_values(opts.tz.hour_bucket(time_micros));
            *s.per_partition.entry(format!("{dt}/{hour}")).or_default() += 1;
        }
        if rng.chance(0.01) {
            line.push(b'\r');
        }
        if !last {
            line.push(b'\n');
        }
        s.lines += 1;
        s.bytes += line.len() as u64;
        out.write_all(&line)?;
    }
    Ok(s)
}

/// Breaks a well-formed line in one of the ways real logs break.
fn corrupt(rng: &mut Rng, line: &mut Vec<u8>) {
    match rng.below(6) {
        // Missing the opening bracket.
        0 => {
            line.remove(0);
        }
        // Cut short (a truncated write).
        1 => {
            let keep = line.len() / 3;
            line.truncate(keep);
        }
        // A non-numeric response time.
        2 => {
            if let Some(p) = line.windows(2).position(|w| w == b" \"") {
                line.splice(p..p, b" 12x".iter().copied());
                if let Some(q) = line[..p].iter().rposition(|&b| b == b' ') {
                    line.drain(q..p);
                }
            }
        }
        // An impossible date.
        3 => {
            if let Some(p) = line.iter().position(|&b| b == b'/') {
                line.splice(1..p, b"31".iter().copied());
                let m = line.iter().position(|&b| b == b'/').map_or(0, |i| i + 1);
                line.splice(m..m + 3, b"Feb".iter().copied());
            }
        }
        // Garbage.
        4 => {
            line.clear();
            line.extend_from_slice(b"<html><body>502 Bad Gateway</body></html>");
        }
        // Missing the content type.
        _ => {
            if let Some(p) = line.windows(2).rposition(|w| w == b" \"") {
                line.truncate(p);
            }
        }
    }
}

/// The CDN-style file name for a generated log: `<domain>_<YYYY>_<MM>_<DD>_<HHMMSS>_<HHMMSS>.gz`
/// in UTC+8, covering the hour of the first line.
pub fn cdn_file_name(opts: &GenOptions) -> String {
    let local = opts.start_micros.div_euclid(1_000_000) + i64::from(CDN_OFFSET_SECS);
    let (y, m, d) = civil_from_days(local.div_euclid(86_400));
    let h = local.rem_euclid(86_400) / 3600;
    format!(
        "{}_{y:04}_{m:02}_{d:02}_{h:02}0000_{:02}0000.gz",
        opts.domain,
        (h + 1) % 24
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::parse::parse_line;

    #[test]
    fn deterministic_and_parseable() {
        let opts = GenOptions {
            lines: 3000,
            bad_fraction: 0.01,
            ..GenOptions::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        let sa = generate(&opts, &mut a).unwrap();
        let sb = generate(&opts, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        assert!(!a.ends_with(b"\n"), "last line has no newline");
        let text = String::from_utf8_lossy(&a);
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len() as u64, sa.lines);
        let mut rows = 0;
        let mut rejected = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let l = l.strip_suffix('\r').unwrap_or(l);
            if l.is_empty() {
                continue;
            }
            match parse_line(l) {
                Ok(_) => rows += 1,
                Err(_) => rejected.push(i as u64 + 1),
            }
        }
        assert_eq!(rows, sa.rows);
        assert_eq!(rejected, sa.rejected_lines);
        assert!(sa.rejected_lines.len() > 10);
        assert_eq!(sa.per_partition.len(), 2, "{:?}", sa.per_partition);
    }

    #[test]
    fn high_cardinality_is_deterministic_varied_and_parseable() {
        let opts = GenOptions {
            lines: 20_000,
            high_cardinality: true,
            ..GenOptions::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        let sa = generate(&opts, &mut a).unwrap();
        generate(&opts, &mut b).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8_lossy(&a);
        let mut paths = std::collections::HashSet::new();
        let mut ips = std::collections::HashSet::new();
        let mut uas = std::collections::HashSet::new();
        let mut rows = 0;
        for l in text.split('\n') {
            let l = l.strip_suffix('\r').unwrap_or(l);
            if l.is_empty() {
                continue;
            }
            let p = parse_line(l).unwrap();
            rows += 1;
            paths.insert(p.path.to_string());
            ips.insert(p.client_ip.to_string());
            uas.insert(p.user_agent.to_string());
        }
        assert_eq!(rows, sa.rows);
        // Zipf over 2M paths: most of 20k draws are distinct, the head repeats.
        assert!((8_000..19_000).contains(&paths.len()), "{}", paths.len());
        assert!(ips.len() > 15_000, "{}", ips.len());
        assert!(uas.len() > 1_000, "{}", uas.len());
    }

    #[test]
    fn file_name_is_cdn_style() {
        let n = cdn_file_name(&GenOptions::default());
        assert_eq!(n, "cdn.example.com_2024_03_05_080000_090000.gz");
        assert!(crate::access::filename::parse_file_name(&n).is_some());
    }
}
