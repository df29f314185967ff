//! `cdnlake verify`: Check the lake against its manifests; `--repair` deletes orphans and converts
//! damaged files again from their raw dumps.

use std::collections::BTreeMap;
use std::process::ExitCode;

use cdnlake::repair::verify::{run as verify, Verification};
use cdnlake::repair::{Bound, Selection};

use super::common::*;

/// Which part of the lake a command covers (shared with `rebuild`).
#[derive(clap::Args)]
pub(super) struct Select {
    /// Destination: a path, file:///abs/path, oss://bucket/prefix, s3://bucket/prefix or memory://.
    #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
    dest: String,
    /// Only this domain.
    #[arg(long)]
    domain: Option<String>,
    /// Only files with a partition hour ending after this: an RFC 3339 instant
    /// (2024-03-05T09:00:00+08:00) or a date (2024-03-05, midnight on each file's partition clock).
    #[arg(long)]
    from: Option<String>,
    /// Only files with a partition hour starting before this (RFC 3339 instant or date).
    #[arg(long)]
    to: Option<String>,
}

impl Select {
    pub(super) fn dest(&self) -> &str {
        &self.dest
    }

    pub(super) fn selection(&self) -> anyhow::Result<Selection> {
        let bound =
            |flag, s: &Option<String>| s.as_deref().map(|s| Bound::parse(flag, s)).transpose();
        Ok(Selection {
            domain: self.domain.clone().filter(|d| !d.trim().is_empty()),
            from: bound("--from", &self.from)?,
            to: bound("--to", &self.to)?,
        })
    }
}

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    select: Select,
    /// Delete orphans and convert every damaged file again from its raw dump (no conversion of
    /// the same files may run meanwhile).
    #[arg(long)]
    repair: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let selection = args.select.selection()?;
    let lake = open_lake(args.select.dest())?;
    let rt = runtime()?;
    let v = verify(&lake, rt.handle(), &selection, args.repair)?;
    if args.json {
        outln!("{}", serde_json::to_string(&v)?)?;
    } else {
        eprint!("{}", render(&v, args.select.dest()));
    }
    Ok(if v.whole {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The human summary: one line per problem, orphan and repair, then the figures.
fn render(v: &Verification, dest: &str) -> String {
    let mut s = String::new();
    for p in &v.problems {
        s.push_str(&format!(
            "problem: {}: {} {}: {}\n",
            p.file,
            p.key,
            p.kind.name(),
            p.detail
        ));
    }
    for o in &v.orphans {
        s.push_str(&format!("orphan: {o}\n"));
    }
    for k in v.removed.iter().flatten() {
        s.push_str(&format!("removed: {k}\n"));
    }
    for k in v.repaired.iter().flatten() {
        s.push_str(&format!("repaired: {k}\n"));
    }
    for u in v.unrepairable.iter().flatten() {
        s.push_str(&format!("unrepairable: {}\n", u.reason));
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &v.problems {
        *kinds.entry(p.kind.name()).or_default() += 1;
    }
    let kinds = if kinds.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(" ({})", list.join(", "))
    };
    let r = &v.requests_by_kind;
    s.push_str(&format!(
        "{dest}: {} files, {} objects checked; {} problems{kinds}, {} orphans; {} requests (list {}, get {}, range {}, head {}, put {}, delete {}, copy {}) in {:.2}s\n",
        v.manifests,
        v.objects,
        v.problems.len(),
        v.orphans.len(),
        v.requests,
        r.list,
        r.get,
        r.range,
        r.head,
        r.put,
        r.delete,
        r.copy,
        v.seconds
    ));
    if v.repaired.is_some() {
        s.push_str(&format!(
            "repair: {} files converted again, {} orphans removed, {} files unrepairable\n",
            v.repaired.as_ref().map_or(0, Vec::len),
            v.removed.as_ref().map_or(0, Vec::len),
            v.unrepairable.as_ref().map_or(0, Vec::len),
        ));
    }
    s.push_str(if v.whole {
        "the lake is whole\n"
    } else {
        "the lake is NOT whole\n"
    });
    s
}
