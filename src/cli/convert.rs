//! `cdnlake convert`: Convert log files (.gz or plain text; a folder means every log file in it) into the lake.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};

use super::common::*;
use cdnlake::convert::source::Progress;
use cdnlake::convert::{convert_path, ConvertOptions};
use cdnlake::lake::descriptor::Descriptor;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Log files or folders.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Destination: a path, file:///abs/path, s3://bucket/prefix or memory://.
    #[arg(long, env = "CDNLAKE_DEST", default_value = "./lake")]
    dest: String,
    /// Domain to use when the file name does not say (overrides the name).
    #[arg(long, env = "CDNLAKE_DOMAIN")]
    domain: Option<String>,
    #[command(flatten)]
    lake_args: LakeArgs,
    /// Print one JSON run report per file on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        inputs,
        dest,
        domain,
        lake_args,
        json,
    } = args;
    let wanted = lake_args.wanted()?;
    let files = expand_inputs(&inputs)?;
    let lake = open_lake(&dest)?;
    let rt = runtime()?;
    // Once per run: the lake's layout and clock (recorded now for a new lake).
    let descriptor = rt.block_on(Descriptor::ensure(&lake, &wanted))?;
    let opts = ConvertOptions {
        domain,
        ..ConvertOptions::default()
    }
    .for_lake(&descriptor);
    let bar = progress_bar(&files);
    let mut failed = 0;
    let mut done = 0;
    for f in &files {
        let mut opts = opts.clone();
        if let Some(pb) = &bar {
            let (pb, base) = (pb.clone(), done);
            opts.decode.progress = Some(Progress(Arc::new(move |n| pb.set_position(base + n))));
        }
        let res = convert_path(&lake, rt.handle(), f, &opts);
        done += std::fs::metadata(f).map_or(0, |m| m.len());
        let say = |line: String| match &bar {
            Some(pb) => pb.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        };
        match res {
            Ok(r) => {
                if json {
                    outln!("{}", serde_json::to_string(&r)?)?;
                } else {
                    say(summary(&r));
                }
            }
            Err(e) => {
                failed += 1;
                say(format!("cdnlake: error: {e}"));
            }
        }
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    if failed > 0 {
        if files.len() > 1 {
            eprintln!("cdnlake: {failed} of {} files failed", files.len());
        }
        return Ok(ExitCode::FAILURE);
    }
    if !json {
        eprintln!("lake: {dest}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Expands folders into the log files they hold (sorted, not recursive).
fn expand_inputs(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list folder", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && f.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                            !n.starts_with('.')
                                && (n.ends_with(".gz")
                                    || cdnlake::access::filename::parse_file_name(n).is_some())
                        })
                })
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("{}: folder holds no log files (*.gz)", p.display());
            }
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// A progress bar over the inputs' bytes, only on a terminal and only for long work.
fn progress_bar(files: &[PathBuf]) -> Option<indicatif::ProgressBar> {
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    if !std::io::stderr().is_terminal() || total < (16 << 20) {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style);
    }
    Some(pb)
}
