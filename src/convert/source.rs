//! Byte streams in: opening a source, teeing its compressed bytes into the raw dump, gunzipping
//! (every member) straight into the line framer's blocks ([`super::framer`]), which go to the
//! parsers.
//!
//! All of this is synchronous and runs on one dedicated thread per file: gunzip is inherently
//! sequential, and keeping it apart from parsing is what lets the other core parse.

use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender};

use sha2::{Digest, Sha256};

use super::framer::{Block, LineFramer};
use crate::error::{Error, Result, StoreOp};
use crate::lake::sink::ObjectSink;

/// Default bound on the decompressed size of one log file: far above any real hourly log
/// (several GB), low enough that a gzip bomb stops instead of running until a timeout.
pub(crate) const MAX_DECOMPRESSED: u64 = 64 << 30;

/// Limits and sizes for decoding.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Target size of a block of lines (4 MiB).
    pub block_size: usize,
    /// Lines longer than this are cut (the parser then rejects them) instead of buffered.
    pub max_line: usize,
    /// Stop with an error past this many decompressed bytes.
    pub max_decompressed: u64,
    /// Told the number of source bytes read so far (for a progress bar).
    pub progress: Option<Progress>,
    /// Checked before every read of the source: once set, the run stops with
    /// [`Error::Interrupted`] and aborts its uploads (a client that went away, a shutdown).
    pub cancel: Option<Cancel>,
}

/// A flag that stops a run between two reads of its source.
#[derive(Debug, Clone, Default)]
pub struct Cancel(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    pub(crate) fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A callback given the source bytes read so far. Called from the decoder thread.
#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            // Measured against 2 MiB (window 5) on 360 MB and 1.5 GB logs: 5-8% faster end to
            // end (fewer, larger encoder passes per row group), +25 MiB peak memory. 8 MiB gained
            // nothing more and passed 256 MiB.
            block_size: 4 * 1024 * 1024,
            max_line: 64 * 1024,
            max_decompressed: MAX_DECOMPRESSED,
            progress: None,
            cancel: None,
        }
    }
}

/// What the source stage saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct DecodeStats {
    /// Bytes read from the source (compressed for a `.gz`).
    pub bytes_in: u64,
    /// SHA-256 of those bytes, hex.
    pub sha256: String,
    pub bytes_decompressed: u64,
    pub gzip: bool,
    pub blocks: u64,
}

/// Opens a local file for reading.
pub(crate) fn open_local(path: &Path) -> Result<std::fs::File> {
    let f = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match f.metadata() {
        Ok(m) if m.is_dir() => Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("is a folder"),
        }),
        _ => Ok(f),
    }
}

/// Passes bytes through while hashing them, counting them and copying them to the raw dump.
struct Tee<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
    raw: Option<ObjectSink>,
    progress: Option<Progress>,
    cancel: Option<Cancel>,
    /// Set when the failure came from the source or the raw dump rather than the gzip data.
    failure: Option<Error>,
    file: String,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
            self.failure = Some(Error::Interrupted {
                file: self.file.clone(),
            });
            return Err(std::io::Error::other("cancelled"));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let msg = e.to_string();
                self.failure = Some(Error::Read {
                    file: self.file.clone(),
                    bytes: self.bytes,
                    source: e,
                });
                return Err(std::io::Error::other(msg));
            }
        };
        let data = &buf[..n];
        self.hasher.update(data);
        self.bytes += n as u64;
        if let Some(p) = &self.progress {
            (p.0)(self.bytes);
        }
        if let Some(raw) = self.raw.as_mut() {
            if let Err(e) = raw.write_all(data) {
                self.failure = Some(raw.store_error(StoreOp::UploadRawDump));
                return Err(e);
            }
        }
        Ok(n)
    }
}

impl<R> Tee<R> {
    fn new(inner: R, file: &str, raw: Option<ObjectSink>, opts: &DecodeOptions) -> Self {
        Tee {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            raw,
            progress: opts.progress.clone(),
            cancel: opts.cancel.clone(),
            failure: None,
            file: file.to_string(),
        }
    }
}

/// The gzip magic, the first two bytes of a gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads `input` to the end: tees it into `raw`, gunzips it when it starts with the gzip magic
/// (all members), and sends line-aligned blocks ([`LineFramer`]) to `tx`. Returns the stats and
/// the raw sink (not yet completed: the caller commits it with everything else).
///
/// `file` names the source in errors. A name ending in `.gz` must be gzip.
///
/// `spare` hands back the buffers of blocks already parsed: a block is filled into one of them
/// when there is one, so the decoder reuses a few warm 4 MiB buffers instead of asking the
/// allocator for fresh ones (each zeroed and faulted in page by page, 1024 page faults a block).
pub(crate) fn decode_and_split(
    input: impl Read,
    file: &str,
    raw: Option<ObjectSink>,
    opts: &DecodeOptions,
    tx: &SyncSender<Block>,
    spare: Option<Receiver<Vec<u8>>>,
) -> Result<(DecodeStats, Option<ObjectSink>)> {
    let mut tee = Tee::new(input, file, raw, opts);
    let head = read_head(&mut tee, file)?;
    let gzip = head.starts_with(&GZIP_MAGIC);
    if !gzip && file.ends_with(".gz") {
        return Err(not_gzip(file, &head));
    }
    let mut stats = DecodeStats {
        gzip,
        ..DecodeStats::default()
    };
    let br = BufReader::with_capacity(256 * 1024, std::io::Cursor::new(head).chain(tee));
    let spare = spare.as_ref();
    let (framed, mut tee) = if gzip {
        let mut r = flate2::bufread::MultiGzDecoder::new(br);
        let framed = frame(&mut r, opts, tx, spare, &mut stats);
        (framed, r.into_inner().into_inner().into_inner().1)
    } else {
        let mut r = br;
        let framed = frame(&mut r, opts, tx, spare, &mut stats);
        (framed, r.into_inner().into_inner().1)
    };
    stats.bytes_in = tee.bytes;
    if let Err(e) = framed {
        // A failure of the source or the raw dump explains the decoder's.
        return Err(tee
            .failure
            .take()
            .unwrap_or_else(|| e.into_error(file, &stats, opts.max_decompressed)));
    }
    read_rest(&mut tee, file)?;
    stats.bytes_in = tee.bytes;
    stats.sha256 = hex::encode(tee.hasher.finalize_reset());
    Ok((stats, tee.raw.take()))
}

/// The first two bytes (the gzip magic), fewer only when the input is shorter. A source may
/// hand them over one at a time (an HTTP body cut into tiny chunks), so this reads until there
/// are two or the input ends. An empty input is an error.
fn read_head<R: Read>(tee: &mut Tee<R>, file: &str) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(2);
    while head.len() < 2 {
        let mut b = [0u8; 2];
        match tee.read(&mut b[..2 - head.len()]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(tee.failure.take().unwrap_or(Error::Read {
                    file: file.into(),
                    bytes: 0,
                    source: e,
                }))
            }
        }
    }
    if head.is_empty() {
        return Err(Error::EmptyFile { file: file.into() });
    }
    Ok(head)
}

/// A `.gz` name over bytes that are not gzip, with the first bytes in hex.
fn not_gzip(file: &str, head: &[u8]) -> Error {
    let magic = head
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    Error::NotGzip {
        file: file.into(),
        magic,
    }
}

/// Reads anything after the last member the decoder did not need (there is none for a valid
/// file, but the raw dump and checksum must cover every byte).
fn read_rest<R: Read>(tee: &mut Tee<R>, file: &str) -> Result<()> {
    let mut rest = Vec::new();
    match tee.read_to_end(&mut rest) {
        Ok(_) => Ok(()),
        Err(source) => Err(tee.failure.take().unwrap_or(Error::Read {
            file: file.into(),
            bytes: tee.bytes,
            source,
        })),
    }
}

/// Why framing stopped early.
enum SplitError {
    Io(std::io::Error),
    /// Past [`DecodeOptions::max_decompressed`].
    TooLarge,
    /// The receiver of the blocks went away (the writer stopped).
    Closed,
}

impl SplitError {
    fn into_error(self, file: &str, stats: &DecodeStats, limit: u64) -> Error {
        match self {
            SplitError::TooLarge => Error::TooLarge {
                file: file.into(),
                limit,
            },
            SplitError::Io(source) if stats.gzip => Error::Gzip {
                file: file.into(),
                compressed_bytes: stats.bytes_in,
                decompressed_bytes: stats.bytes_decompressed,
                source,
            },
            SplitError::Io(source) => Error::Read {
                file: file.into(),
                bytes: stats.bytes_in,
                source,
            },
            SplitError::Closed => Error::Cancelled { file: file.into() },
        }
    }
}

/// Reads the decompressed stream `r` to its end through a [`LineFramer`] and sends its blocks
/// to `tx`, counting the decompressed bytes (bounded by `max_decompressed`) and the blocks.
///
/// `r` reads straight into the block being filled ([`LineFramer::space`]): gunzip writes each
/// byte once, where the parser reads it, instead of into a chunk the framer then copies (that
/// copy was 2.35% of a whole run's CPU, on this one serial thread). A read may fill all of the
/// block's unfilled rest (gunzip gives what one pass over its 256 KiB of input yields, about 3
/// reads a block), and gunzip copies the end of each read into its 32 KiB window: 3 copies a
/// block instead of the 32 of 128 KiB reads.
fn frame(
    r: &mut impl Read,
    opts: &DecodeOptions,
    tx: &SyncSender<Block>,
    spare: Option<&Receiver<Vec<u8>>>,
    stats: &mut DecodeStats,
) -> std::result::Result<(), SplitError> {
    let mut framer = LineFramer::new(opts.block_size, opts.max_line);
    let send = |b: Block| tx.send(b).map_err(|_| SplitError::Closed);
    let take_spare = |framer: &mut LineFramer| {
        if framer.wants_buffer() {
            if let Some(b) = spare.and_then(|s| s.try_recv().ok()) {
                framer.recycle(b);
            }
        }
    };
    loop {
        // A block's first read may take the spare for its buffer and also fill it, which needs
        // another buffer for the next block: so look for one before and after `space`.
        take_spare(&mut framer);
        framer.space();
        take_spare(&mut framer);
        let n = match r.read(framer.space()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SplitError::Io(e)),
        };
        stats.bytes_decompressed += n as u64;
        if stats.bytes_decompressed > opts.max_decompressed {
            return Err(SplitError::TooLarge);
        }
        for b in framer.commit(n) {
            stats.blocks += 1;
            send(b)?;
        }
    }
    for b in framer.finish() {
        stats.blocks += 1;
        send(b)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn run(input: &[u8], file: &str, opts: &DecodeOptions) -> (Result<DecodeStats>, Vec<Block>) {
        let (tx, rx) = sync_channel(1024);
        let res = decode_and_split(input, file, None, opts, &tx, None).map(|(s, _)| s);
        drop(tx);
        (res, rx.into_iter().collect())
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn blocks_are_line_aligned_and_numbered() {
        let text: String = (0..1000)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 50)))
            .collect();
        let opts = DecodeOptions {
            block_size: 1000,
            max_line: 100,
            ..Default::default()
        };
        let (res, blocks) = run(text.as_bytes(), "f", &opts);
        let stats = res.unwrap();
        assert!(!stats.gzip);
        assert!(blocks.len() > 10);
        let mut joined = Vec::new();
        let mut line = 1;
        for b in &blocks {
            assert_eq!(b.first_line, line);
            assert!(b.data.ends_with(b"\n"));
            line += b.data.iter().filter(|&&c| c == b'\n').count() as u64;
            joined.extend_from_slice(&b.data);
        }
        assert_eq!(joined, text.as_bytes());
    }

    /// A reader that hands over one byte per call, like an HTTP body cut into tiny chunks.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn gzip_magic_split_across_reads_is_recognised() {
        let data = gz(b"a\nb\n");
        let (tx, rx) = sync_channel(16);
        let (stats, _) = decode_and_split(
            Trickle(&data),
            "x.gz",
            None,
            &DecodeOptions::default(),
            &tx,
            None,
        )
        .unwrap();
        drop(tx);
        assert!(stats.gzip);
        assert_eq!(stats.bytes_in, data.len() as u64);
        let all: Vec<u8> = rx.into_iter().flat_map(|b| b.data).collect();
        assert_eq!(all, b"a\nb\n");
    }

    #[test]
    fn all_gzip_members_are_decoded() {
        let mut data = gz(b"a\nb\n");
        data.extend(gz(b"c\nd"));
        let (res, blocks) = run(&data, "x.gz", &DecodeOptions::default());
        let stats = res.unwrap();
        assert!(stats.gzip);
        assert_eq!(stats.bytes_in, data.len() as u64);
        assert_eq!(stats.bytes_decompressed, 7);
        let all: Vec<u8> = blocks.into_iter().flat_map(|b| b.data).collect();
        assert_eq!(all, b"a\nb\nc\nd");
    }

    #[test]
    fn truncated_and_non_gzip_and_empty_are_errors() {
        let text = "hello\n".repeat(10_000);
        let data = gz(text.as_bytes());
        let (res, _) = run(&data[..data.len() / 2], "x.gz", &DecodeOptions::default());
        assert!(matches!(res, Err(Error::Gzip { .. })), "{res:?}");
        let (res, _) = run(&data[..data.len() - 4], "x.gz", &DecodeOptions::default());
        assert!(
            matches!(res, Err(Error::Gzip { .. })),
            "missing trailer: {res:?}"
        );
        let mut corrupt = data.clone();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0xff;
        let (res, _) = run(&corrupt, "x.gz", &DecodeOptions::default());
        assert!(res.is_err(), "corrupt");
        let (res, _) = run(b"plain text\n", "x.gz", &DecodeOptions::default());
        assert!(matches!(res, Err(Error::NotGzip { .. })), "{res:?}");
        let (res, _) = run(b"", "x.gz", &DecodeOptions::default());
        assert!(matches!(res, Err(Error::EmptyFile { .. })), "{res:?}");
        let mut trailing = data.clone();
        trailing.extend_from_slice(b"garbage");
        let (res, _) = run(&trailing, "x.gz", &DecodeOptions::default());
        assert!(res.is_err(), "trailing garbage");
    }

    #[test]
    fn over_long_lines_are_cut_not_buffered() {
        let mut text = b"short\n".to_vec();
        text.extend(std::iter::repeat_n(b'y', 10_000));
        text.extend(b"\nafter\n");
        let opts = DecodeOptions {
            block_size: 1000,
            max_line: 100,
            ..Default::default()
        };
        let (res, blocks) = run(&text, "f", &opts);
        res.unwrap();
        let lines: Vec<Vec<u8>> = blocks
            .iter()
            .flat_map(|b| {
                b.data
                    .split(|&c| c == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].len(), 101);
        assert_eq!(lines[2], b"after");
        assert_eq!(blocks.last().unwrap().first_line, 3);
    }

    /// The decoder's path: gunzip writes into the block, here into recycled buffers full of
    /// stale `\n` (which would show as extra lines if any leaked into a block), across an
    /// over-long line and several gzip members; the blocks are the framer's blocks of one push.
    #[test]
    fn gunzip_into_recycled_blocks_frames_like_one_push() {
        let mut text = Vec::new();
        for i in 0..3000 {
            text.extend(format!("line {i} {}\n", "x".repeat(i % 90)).bytes());
            if i == 1000 {
                text.extend(std::iter::repeat_n(b'y', 5000));
                text.push(b'\n');
            }
        }
        let mut data = gz(&text[..40_000]);
        data.extend(gz(&text[40_000..]));
        let opts = DecodeOptions {
            block_size: 1000,
            max_line: 300,
            ..Default::default()
        };
        let (tx, rx) = sync_channel(1024);
        let (spare_tx, spare_rx) = sync_channel(1024);
        for _ in 0..1000 {
            spare_tx.send(vec![b'\n'; 4000]).unwrap();
        }
        let (stats, _) =
            decode_and_split(&data[..], "x.gz", None, &opts, &tx, Some(spare_rx)).unwrap();
        drop(tx);
        let blocks: Vec<Block> = rx.into_iter().collect();
        let want = crate::convert::framer::frame_all(&text, opts.block_size, opts.max_line, &[]);
        assert_eq!(blocks, want);
        assert_eq!(stats.blocks, want.len() as u64);
        assert_eq!(stats.bytes_decompressed, text.len() as u64);
        assert!(
            blocks.iter().all(|b| b.data.capacity() == 4000),
            "every block was filled into a recycled buffer"
        );
    }

    #[test]
    fn decompressed_size_is_bounded() {
        let data = gz(&vec![b'a'; 100_000]);
        let opts = DecodeOptions {
            max_decompressed: 1000,
            ..Default::default()
        };
        let (res, _) = run(&data, "x.gz", &opts);
        assert!(matches!(res, Err(Error::TooLarge { .. })), "{res:?}");
    }
}
