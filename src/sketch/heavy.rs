//! Heavy hitters with bounded memory: a Misra-Gries summary that counts two metrics per key
//! (requests and response bytes), mergeable across blocks, hours and files.
//!
//! Why Misra-Gries: it is the summary whose merge keeps its error bound (Agarwal et al.,
//! "Mergeable summaries", 2012): counters add, then the summary is cut back to `k` keys by
//! subtracting the (k+1)-th largest counter from every counter. Each cut removes at least (k+1)
//! times what it subtracts, so the total subtracted, the summary's `error`, is at most N/(k+1)
//! of the metric's total N, however the stream was split and merged. For every key:
//!
//! ```text
//! stored ≤ true ≤ stored + error      (stored = 0 for a key the summary does not hold)
//! ```
//!
//! The counters are lower bounds; the report shows them with `+error` as the bound. A summary
//! that never had to cut (fewer distinct keys than its capacity: status codes, user agents, most
//! hours' referers) has `error = 0` and is exact. And a key present in every part that was cut
//! (every heavy key) lost exactly the same amount as every other such key, so the order of heavy
//! keys, ties included, is the exact order.
//!
//! The two metrics are cut independently (each has its own error); a key is dropped only when
//! both its counters reached zero, so a summary holds at most 2k keys after a cut.
//!
//! Memory: at most [`Summary::slack`] × k keys between cuts, each at most [`MAX_KEY_BYTES`]: a
//! log of millions of distinct paths costs the same as one of a thousand.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// Keys longer than this are cut (at a character boundary) and end in `…`: it bounds the memory
/// of a summary whatever the log, and no report shows more of a value. Two values that share
/// their first 1 KiB count as one.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// Keys a stored summary keeps per dimension (per file and partition hour). With this capacity
/// the error of a summary is at most N/1001 of its total.
pub(crate) const CAPACITY: usize = 1000;

/// Requests, bytes.
pub(crate) type Counts = [i64; 2];

/// A Misra-Gries summary of two metrics (module doc).
#[derive(Clone, Debug)]
pub struct Summary {
    map: HashMap<Box<str>, Counts, ahash::RandomState>,
    /// Total subtracted from every counter, per metric: the bound of the undercount.
    pub error: Counts,
    /// Total added, per metric (requests, bytes seen).
    pub total: Counts,
    capacity: usize,
}

/// A block's exact counts cut once to a capacity: what the parse pool hands the writer per
/// dimension ([`Summary::merge_block`]). A plain list, not a map: its keys are distinct but for
/// two values sharing their first [`MAX_KEY_BYTES`] (which the merge adds together, as
/// [`Summary::add_stored`] would), so building a hash table per block and dimension only to
/// iterate it once on the writer thread would be wasted work.
#[derive(Clone, Debug, Default)]
pub struct BlockSummary {
    /// The keys that survived the cut (bounded, owned: the writer moves them into its map) and
    /// their counters after the cut.
    rows: Vec<(Box<str>, Counts)>,
    /// Subtracted by the cut, per metric.
    pub error: Counts,
    /// Total counted, per metric.
    pub total: Counts,
}

impl BlockSummary {
    /// The cut of exact counts (a block's, counted with borrowed keys): equal to adding every
    /// count to a [`Summary`] of `capacity` and cutting it once, but only the keys that survive
    /// are copied, so a block of nearly all-distinct values (client IPs) allocates next to
    /// nothing. `counts` is walked at most three times (totals and each metric's cut level, then
    /// the survivors) and nothing is collected but the counters of one metric, into `scratch`
    /// (reused across calls); when there are no more keys than `capacity` nothing is cut and the
    /// walk is one.
    pub(crate) fn from_exact<'a, I>(counts: I, capacity: usize, scratch: &mut Vec<i64>) -> Self
    where
        I: ExactSizeIterator<Item = (&'a str, Counts)> + Clone,
    {
        let capacity = capacity.max(1);
        let mut out = BlockSummary::default();
        // Per metric, what the cut subtracts from every counter (None: that metric is not cut).
        let mut sub: [Option<i64>; 2] = [None; 2];
        if counts.len() > capacity {
            for m in 0..2 {
                scratch.clear();
                for (_, c) in counts.clone() {
                    if m == 0 {
                        out.total[0] = out.total[0].saturating_add(c[0]);
                        out.total[1] = out.total[1].saturating_add(c[1]);
                    }
                    if c[m] > 0 {
                        scratch.push(c[m]);
                    }
                }
                if scratch.len() <= capacity {
                    continue;
                }
                // The (capacity+1)-th largest counter, as in [`Summary::cut`].
                let (_, nth, _) = scratch.select_nth_unstable_by(capacity, |a, b| b.cmp(a));
                sub[m] = Some(*nth);
                out.error[m] = *nth;
            }
        }
        let cut = sub != [None, None];
        let mut rows = Vec::with_capacity(if cut { 2 * capacity } else { counts.len() });
        for (k, mut c) in counts {
            if !cut {
                out.total[0] = out.total[0].saturating_add(c[0]);
                out.total[1] = out.total[1].saturating_add(c[1]);
            }
            // `wrapping_sub` as release builds of `Summary::cut` compute it (a counter near
            // i64::MIN, from saturated negative byte counts, never panics).
            if let Some(s) = sub[0] {
                c[0] = c[0].wrapping_sub(s).max(0);
            }
            if let Some(s) = sub[1] {
                c[1] = c[1].wrapping_sub(s).max(0);
            }
            if c[0] > 0 || c[1] > 0 {
                rows.push((bounded_key(k).into_owned().into_boxed_str(), c));
            }
        }
        out.rows = rows;
        out
    }

    /// The kept keys and their counters, in no particular order.
    pub fn rows(&self) -> &[(Box<str>, Counts)] {
        &self.rows
    }
}

impl Default for Summary {
    fn default() -> Self {
        Summary::new(CAPACITY)
    }
}

/// `value` cut to [`MAX_KEY_BYTES`] at a character boundary, with `…` when cut.
pub(crate) fn bounded_key(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= MAX_KEY_BYTES {
        return value.into();
    }
    let mut end = MAX_KEY_BYTES - '…'.len_utf8();
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end]).into()
}

impl Summary {
    pub fn new(capacity: usize) -> Self {
        Summary {
            map: HashMap::with_hasher(ahash::RandomState::new()),
            error: [0; 2],
            total: [0; 2],
            capacity: capacity.max(1),
        }
    }

    /// Keys held before a cut is due: cutting only every few thousand new keys keeps the cost
    /// per row one hash lookup.
    pub(crate) fn slack(&self) -> usize {
        4 * self.capacity
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Counts one occurrence of `key` with `counts` (1 request and its bytes).
    #[inline]
    pub fn add(&mut self, key: &str, counts: Counts) {
        self.total[0] = self.total[0].saturating_add(counts[0]);
        self.total[1] = self.total[1].saturating_add(counts[1]);
        let key = bounded_key(key);
        if let Some(c) = self.map.get_mut(key.as_ref()) {
            c[0] = c[0].saturating_add(counts[0]);
            c[1] = c[1].saturating_add(counts[1]);
            return;
        }
        self.map.insert(key.into_owned().into_boxed_str(), counts);
        if self.map.len() > self.slack() {
            self.cut(self.capacity);
        }
    }

    /// Adds a stored row: a key with its counters (already lower bounds of another summary).
    pub(crate) fn add_stored(&mut self, key: &str, counts: Counts) {
        let key = bounded_key(key);
        if let Some(c) = self.map.get_mut(key.as_ref()) {
            c[0] = c[0].saturating_add(counts[0]);
            c[1] = c[1].saturating_add(counts[1]);
            return;
        }
        self.map.insert(key.into_owned().into_boxed_str(), counts);
        if self.map.len() > self.slack() {
            self.cut(self.capacity);
        }
    }

    /// Adds another summary's counters, errors and totals.
    ///
    /// Every key is added before the one cut (when the summary passed its slack), so the result
    /// depends only on the counters, never on the order of `other`'s map, which is seeded per
    /// process: cutting in the middle of the loop made the stored `heavy_hitters` rows differ
    /// from run to run of the same file (same bounds, other keys at the edge of the cut).
    /// Memory: at most the slack plus `other`'s keys, for the duration of the call.
    pub fn merge(&mut self, other: &Summary) {
        for m in 0..2 {
            self.error[m] = self.error[m].saturating_add(other.error[m]);
            self.total[m] = self.total[m].saturating_add(other.total[m]);
        }
        self.map.reserve(other.map.len());
        for (k, c) in &other.map {
            // `other` holds bounded keys already.
            match self.map.get_mut(k.as_ref()) {
                Some(e) => {
                    e[0] = e[0].saturating_add(c[0]);
                    e[1] = e[1].saturating_add(c[1]);
                }
                None => {
                    self.map.insert(k.clone(), *c);
                }
            }
        }
        if self.map.len() > self.slack() {
            self.cut(self.capacity);
        }
    }

    /// Adds a block's cut summary ([`BlockSummary::from_exact`]), taking its keys: one hash and
    /// probe per key, and a key new to this summary moves in without a copy.
    ///
    /// As in [`Self::merge`], every key is added before the one cut, so the result depends only
    /// on the counters, never on the order of the block's rows (its hash table's, seeded per
    /// process): the same counters, errors and totals as merging the equal [`Summary`].
    pub fn merge_block(&mut self, block: BlockSummary) {
        for m in 0..2 {
            self.error[m] = self.error[m].saturating_add(block.error[m]);
            self.total[m] = self.total[m].saturating_add(block.total[m]);
        }
        self.map.reserve(block.rows.len());
        for (k, c) in block.rows {
            // The block holds bounded keys already.
            match self.map.entry(k) {
                Entry::Occupied(mut e) => {
                    let e = e.get_mut();
                    e[0] = e[0].saturating_add(c[0]);
                    e[1] = e[1].saturating_add(c[1]);
                }
                Entry::Vacant(v) => {
                    v.insert(c);
                }
            }
        }
        if self.map.len() > self.slack() {
            self.cut(self.capacity);
        }
    }

    /// Adds the error and total of a stored summary whose rows come through [`Self::add_stored`].
    pub(crate) fn add_bounds(&mut self, error: Counts, total: Counts) {
        for m in 0..2 {
            self.error[m] = self.error[m].saturating_add(error[m]);
            self.total[m] = self.total[m].saturating_add(total[m]);
        }
    }

    /// Cuts each metric back to its `keep` largest counters (module doc). Deterministic: which
    /// keys go depends only on the counters, never on the map's order.
    pub fn cut(&mut self, keep: usize) {
        for m in 0..2 {
            let mut values: Vec<i64> = self.map.values().map(|c| c[m]).filter(|&v| v > 0).collect();
            if values.len() <= keep {
                continue;
            }
            // The (keep+1)-th largest counter.
            let (_, nth, _) = values.select_nth_unstable_by(keep, |a, b| b.cmp(a));
            let sub = *nth;
            for c in self.map.values_mut() {
                c[m] = (c[m] - sub).max(0);
            }
            self.error[m] = self.error[m].saturating_add(sub);
        }
        self.map.retain(|_, c| c[0] > 0 || c[1] > 0);
    }

    /// Every key and its counters, sorted by key (the stored order).
    pub fn rows(&self) -> Vec<(&str, Counts)> {
        let mut rows: Vec<(&str, Counts)> =
            self.map.iter().map(|(k, c)| (k.as_ref(), *c)).collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows
    }

    /// The `n` keys with the largest counter of `metric` (0 requests, 1 bytes), largest first,
    /// ties on the key ascending (as `ORDER BY n DESC, key ASC`); keys with a zero counter are
    /// not listed.
    pub fn top(&self, metric: usize, n: usize) -> Vec<(&str, Counts)> {
        let mut all: Vec<(&str, Counts)> = self
            .map
            .iter()
            .filter(|(_, c)| c[metric] > 0)
            .map(|(k, c)| (k.as_ref(), *c))
            .collect();
        let cmp = |a: &(&str, Counts), b: &(&str, Counts)| {
            b.1[metric]
                .cmp(&a.1[metric])
                .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
        };
        if all.len() > n && n > 0 {
            all.select_nth_unstable_by(n - 1, cmp);
            all.truncate(n);
        }
        all.sort_by(cmp);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A Zipf-like stream: key i has weight ~ 1/(i+1).
    fn zipf_stream(n: usize, vocab: usize, seed: u64) -> Vec<usize> {
        let mut rng = crate::dev::gen::Rng::new(seed);
        let h: f64 = (1..=vocab).map(|i| 1.0 / i as f64).sum();
        let cdf: Vec<f64> = (1..=vocab)
            .scan(0.0, |s, i| {
                *s += 1.0 / i as f64 / h;
                Some(*s)
            })
            .collect();
        (0..n)
            .map(|_| {
                let u = rng.unit();
                cdf.partition_point(|&c| c < u).min(vocab - 1)
            })
            .collect()
    }

    #[test]
    fn bounds_hold_and_the_heavy_order_is_exact() {
        let stream = zipf_stream(200_000, 50_000, 1);
        let mut exact: BTreeMap<String, Counts> = BTreeMap::new();
        // Split into "blocks" summarised alone, then merged, as the pipeline does.
        let mut merged = Summary::new(100);
        for chunk in stream.chunks(7_000) {
            let mut s = Summary::new(100);
            for &k in chunk {
                let key = format!("/p{k}");
                let bytes = (k as i64 % 7) * 100 + 1;
                s.add(&key, [1, bytes]);
                let e = exact.entry(key).or_default();
                e[0] += 1;
                e[1] += bytes;
            }
            s.cut(100);
            assert!(s.len() <= 200);
            merged.merge(&s);
        }
        merged.cut(100);
        assert_eq!(merged.total[0], 200_000);
        assert!(merged.error[0] <= 200_000 / 101, "{:?}", merged.error);
        assert!(merged.error[0] > 0, "the test must exercise cuts");
        for (k, t) in &exact {
            let stored = merged.map.get(k.as_str()).copied().unwrap_or_default();
            for m in 0..2 {
                assert!(
                    stored[m] <= t[m] && t[m] <= stored[m] + merged.error[m],
                    "{k} {m}"
                );
            }
        }
        // The top 10 by requests equals the exact top 10, ties broken on the key.
        let mut want: Vec<(&String, &Counts)> = exact.iter().collect();
        want.sort_by(|a, b| b.1[0].cmp(&a.1[0]).then_with(|| a.0.cmp(b.0)));
        let got: Vec<&str> = merged.top(0, 10).iter().map(|e| e.0).collect();
        let want: Vec<&str> = want.iter().take(10).map(|e| e.0.as_str()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn exact_without_cuts_and_deterministic() {
        let mut a = Summary::new(10);
        for (k, b) in [("x", 5), ("y", 1), ("x", 5), ("", 3)] {
            a.add(k, [1, b]);
        }
        a.cut(10);
        assert_eq!(a.error, [0, 0]);
        assert_eq!(a.rows(), vec![("", [1, 3]), ("x", [2, 10]), ("y", [1, 1])]);
        assert_eq!(a.top(1, 2), vec![("x", [2, 10]), ("", [1, 3])]);
        // A cut keeps the largest, whatever the map's order.
        let mut s = Summary::new(2);
        for (k, n) in [("a", 5), ("b", 3), ("c", 3), ("d", 1)] {
            for _ in 0..n {
                s.add(k, [1, 0]);
            }
        }
        s.cut(2);
        // The third largest is 3: a keeps 2, b and c drop to 0.
        assert_eq!(s.rows(), vec![("a", [2, 0])]);
        assert_eq!(s.error, [3, 0]);
    }

    #[test]
    fn from_exact_equals_one_cut_of_the_exact_counts() {
        let stream = zipf_stream(20_000, 5_000, 2);
        let mut exact: HashMap<String, Counts> = HashMap::new();
        for &k in &stream {
            let e = exact.entry(format!("k{k}")).or_default();
            e[0] += 1;
            e[1] += k as i64 % 13;
        }
        let block = BlockSummary::from_exact(
            exact.iter().map(|(k, c)| (k.as_str(), *c)),
            50,
            &mut Vec::new(),
        );
        assert!(block.rows().len() <= 100);
        let mut from = Summary::new(50);
        from.merge_block(block);
        let mut once = Summary::new(50);
        once.map = exact
            .iter()
            .map(|(k, c)| (k.clone().into_boxed_str(), *c))
            .collect();
        once.cut(50);
        assert_eq!(from.rows(), once.rows());
        assert_eq!(from.error, once.error);
        assert!(from.error[0] > 0 && from.error[1] > 0);
        assert_eq!(from.total[0], 20_000);
        assert!(from.len() <= 100);
    }

    /// The summary of exact counts as it was made before [`BlockSummary`]: every surviving
    /// key added to a [`Summary`] (kept here as the reference the block path must equal).
    fn reference_from_exact<'a>(
        counts: impl IntoIterator<Item = (&'a str, Counts)>,
        capacity: usize,
    ) -> Summary {
        let mut out = Summary::new(capacity);
        let mut all: Vec<(&str, Counts)> = counts.into_iter().collect();
        for (_, c) in &all {
            out.total[0] = out.total[0].saturating_add(c[0]);
            out.total[1] = out.total[1].saturating_add(c[1]);
        }
        for m in 0..2 {
            let mut values: Vec<i64> = all.iter().map(|e| e.1[m]).filter(|&v| v > 0).collect();
            if values.len() <= out.capacity {
                continue;
            }
            let (_, nth, _) = values.select_nth_unstable_by(out.capacity, |a, b| b.cmp(a));
            let sub = *nth;
            for e in &mut all {
                e.1[m] = (e.1[m] - sub).max(0);
            }
            out.error[m] = out.error[m].saturating_add(sub);
        }
        for (k, c) in all {
            if c[0] > 0 || c[1] > 0 {
                out.add_stored(k, c);
            }
        }
        out
    }

    type Stored = (Vec<(String, Counts)>, Counts, Counts);

    fn stored(s: &Summary) -> Stored {
        let rows = s.rows().into_iter().map(|(k, c)| (k.to_string(), c));
        (rows.collect(), s.error, s.total)
    }

    /// Blocks cut by [`BlockSummary::from_exact`] and merged with [`Summary::merge_block`] give
    /// the rows, errors and totals of the reference path (a [`Summary`] per block, merged with
    /// [`Summary::merge`]), with cuts in the blocks and in the merge, long keys that collide
    /// once bounded, zero byte counts and blocks with fewer keys than the capacity; and the
    /// order of a block's rows does not matter.
    #[test]
    fn block_summaries_merge_as_the_reference_path() {
        let long = "x".repeat(MAX_KEY_BYTES + 10);
        let mut reference = Summary::new(100);
        let mut blocks = Summary::new(100);
        let mut reversed = Summary::new(100);
        let mut scratch = Vec::new();
        for (b, chunk) in zipf_stream(60_000, 20_000, 3).chunks(6_000).enumerate() {
            let mut exact: HashMap<String, Counts> = HashMap::new();
            // Every third block has few keys (no cut in the block).
            let vocab = if b % 3 == 2 { 50 } else { usize::MAX };
            for (i, &k) in chunk.iter().enumerate() {
                let key = match k % vocab {
                    7 => format!("{long}{}", i % 3),
                    k => format!("/p{k}"),
                };
                let e = exact.entry(key).or_default();
                e[0] += 1;
                e[1] += (k as i64 % 5) * 10;
            }
            let iter = || exact.iter().map(|(k, c)| (k.as_str(), *c));
            reference.merge(&reference_from_exact(iter(), 100));
            let block = BlockSummary::from_exact(iter(), 100, &mut scratch);
            assert!(block.rows().len() <= 200 || vocab != usize::MAX);
            let mut rev = block.clone();
            rev.rows.reverse();
            blocks.merge_block(block);
            reversed.merge_block(rev);
        }
        for s in [&mut reference, &mut blocks, &mut reversed] {
            s.cut(100);
        }
        assert!(reference.error[0] > 0 && reference.error[1] > 0);
        assert!(reference.rows().iter().any(|(k, _)| k.ends_with('…')));
        assert_eq!(stored(&blocks), stored(&reference));
        assert_eq!(stored(&reversed), stored(&reference));
    }

    /// Two merges of the same summaries give the same rows, whatever the maps' (per-instance
    /// random) iteration order, also when the merge has to cut.
    #[test]
    fn merge_does_not_depend_on_map_order() {
        let part = |seed: u64| {
            let mut s = Summary::new(100);
            for (i, k) in zipf_stream(5_000, 3_000, seed).into_iter().enumerate() {
                s.add(&format!("key{k}"), [1, i as i64 % 7]);
            }
            s
        };
        // A copy whose map has a fresh seed, so it iterates in another order.
        let reseed = |s: &Summary| {
            let mut s = s.clone();
            s.map = s.map.into_iter().collect();
            s
        };
        let (a, b) = (part(1), part(2));
        let mut rows = Vec::new();
        for _ in 0..4 {
            let mut into = reseed(&a);
            into.merge(&reseed(&b));
            into.cut(100);
            let r: Vec<(String, Counts)> = into
                .rows()
                .into_iter()
                .map(|(k, c)| (k.to_string(), c))
                .collect();
            rows.push((r, into.error, into.total));
        }
        assert!(rows.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn long_keys_are_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_KEY_BYTES);
        let k = bounded_key(&long);
        assert!(k.len() <= MAX_KEY_BYTES && k.ends_with('…'));
        assert_eq!(bounded_key("short"), "short");
    }
}
