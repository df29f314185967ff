//! The threaded middle of a conversion: a decoder thread (tee, gunzip, framing) feeds blocks to
//! parsers on the rayon pool, and the calling thread hands the parsed blocks, in line order, to
//! the writers. Bounded queues sit between the stages, so memory does not grow with the file.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use crate::access::block::{parse_block, BlockOptions, ParsedBlock};
use crate::error::{Error, Result};
use crate::lake::sink::ObjectSink;
use crate::tables::access::ACCESS;
use crate::writers::sketches::{sketch_block, BlockSketch};

use super::framer::Block;
use super::source::{decode_and_split, DecodeStats};
use super::ConvertOptions;

/// Reads `input` to the end: its bytes are teed into `raw`, its lines parsed in parallel and
/// passed to `write` in line order. Returns what the decoder saw and the raw dump (staged, not
/// committed). `location` names the source in errors.
pub(crate) fn run(
    input: impl Read + Send,
    location: &str,
    source_file: &str,
    raw: ObjectSink,
    opts: &ConvertOptions,
    mut write: impl FnMut(ParsedBlock, BlockSketch) -> Result<()>,
) -> Result<(DecodeStats, ObjectSink)> {
    let window = if opts.parse_window == 0 {
        rayon::current_num_threads() + 1
    } else {
        opts.parse_window
    };
    let (block_tx, block_rx) = sync_channel(window);
    // Parsed blocks' buffers go back to the decoder (see `decode_and_split`); a full queue drops
    // the buffer, so this never blocks a parser. The decoder takes one per block as the parsers
    // give one back, so two spares keep it supplied; more would only sit in memory.
    let (spare_tx, spare_rx) = sync_channel(2);
    let (decoded, written) = std::thread::scope(|s| {
        let decoder = s.spawn(move || {
            decode_and_split(
                input,
                location,
                Some(raw),
                &opts.decode,
                &block_tx,
                Some(spare_rx),
            )
        });
        let written = parse_in_order(&block_rx, &spare_tx, window, source_file, opts, &mut write);
        // Unblock the decoder if the writer stopped early, then collect its result.
        drop(block_rx);
        let decoded = decoder
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("decoder thread panicked".into())));
        (decoded, written)
    });
    // A decoding error explains a writer error (not the other way round): report it first,
    // unless the decoder only stopped because the writer failed.
    let (stats, raw) = match decoded {
        Err(Error::Cancelled { .. }) if written.is_err() => {
            return Err(written
                .err()
                .unwrap_or_else(|| Error::Internal("writer failed".into())))
        }
        other => other?,
    };
    written?;
    let raw = raw.ok_or_else(|| Error::Internal("raw dump missing".into()))?;
    Ok((stats, raw))
}

/// A parsed block and its rollup summaries.
type Parsed = (ParsedBlock, BlockSketch);

/// Parses up to `window` blocks at once on the rayon pool and passes them to `write` in order.
fn parse_in_order(
    blocks: &Receiver<Block>,
    spare: &SyncSender<Vec<u8>>,
    window: usize,
    source_file: &str,
    opts: &ConvertOptions,
    write: &mut impl FnMut(ParsedBlock, BlockSketch) -> Result<()>,
) -> Result<()> {
    let schema = ACCESS.arrow_schema();
    let block_opts = Arc::new(BlockOptions {
        tz: opts.tz,
        max_line: opts.decode.max_line,
    });
    let source_file: Arc<str> = Arc::from(source_file);
    let (res_tx, res_rx) = channel::<(u64, Result<Parsed>)>();
    let mut pending: BTreeMap<u64, Parsed> = BTreeMap::new();
    let mut next = 0u64;
    let mut in_flight = 0usize;
    let mut source_done = false;
    loop {
        while let Ok((seq, pb)) = res_rx.try_recv() {
            in_flight -= 1;
            pending.insert(seq, pb?);
        }
        while let Some((pb, sketch)) = pending.remove(&next) {
            write(pb, sketch)?;
            next += 1;
        }
        if !source_done && in_flight + pending.len() < window {
            match blocks.recv() {
                Ok(block) => {
                    in_flight += 1;
                    let tx = res_tx.clone();
                    let spare = spare.clone();
                    let (schema, bo, sf) =
                        (schema.clone(), block_opts.clone(), source_file.clone());
                    rayon::spawn(move || {
                        // A panic in a rayon task would abort the process (and every invocation
                        // in flight in `serve`): report it as this file's error instead.
                        // The rollup summaries of the block are made here too, on the parse
                        // pool, so the writer thread only merges them (writers/sketches.rs).
                        let pb = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            let pb = parse_block(&block.data, block.first_line, &sf, &schema, &bo);
                            let sketch = sketch_block(&pb, bo.tz)?;
                            Ok((pb, sketch))
                        }))
                        .map_err(|_| {
                            Error::Internal(format!(
                                "parsing the block at line {} panicked",
                                block.first_line
                            ))
                        })
                        .and_then(|r| r);
                        // The rows are copied into Arrow buffers: the text's buffer is free.
                        let _ = spare.try_send(block.data);
                        let _ = tx.send((block.seq, pb));
                    });
                }
                Err(_) => source_done = true,
            }
            continue;
        }
        if in_flight == 0 {
            // Here the source is done or the window is full of blocks that cannot be written:
            // either everything is written or a block went missing.
            if source_done && pending.is_empty() {
                return Ok(());
            }
            return Err(Error::Internal(format!("block {next} never arrived")));
        }
        // This function holds a sender itself, so this only fails if every task is gone.
        let (seq, pb) = res_rx
            .recv()
            .map_err(|_| Error::Internal("parser stopped".into()))?;
        in_flight -= 1;
        pending.insert(seq, pb?);
    }
}
