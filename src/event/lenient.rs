//! The CLI's convenience for event files pasted from Alibaba's documentation, whose samples hold
//! `//` comments and trailing commas: both are blanked out before strict JSON parsing.

use super::bad;
use crate::error::Result;

/// Replaces `//` and `/* */` comments (outside strings) and trailing commas before `}`/`]` by
/// spaces, keeping newlines, so the line and column of a later JSON error stay right.
pub fn strip_comments_and_trailing_commas(text: &[u8]) -> Result<Vec<u8>> {
    let mut out = text.to_vec();
    let n = text.len();
    let mut i = 0;
    let mut in_string = false;
    // Position of a comma outside strings not yet followed by a significant character.
    let mut pending_comma: Option<usize> = None;
    while i < n {
        let c = text[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match c {
            b'/' if text.get(i + 1) == Some(&b'/') => {
                while i < n && text[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
                continue;
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                let start = i;
                out[i] = b' ';
                out[i + 1] = b' ';
                i += 2;
                loop {
                    if i + 1 >= n {
                        let (line, col) = line_col(text, start);
                        return Err(bad(
                            None,
                            "",
                            format!("comment opened at line {line} column {col} is never closed"),
                        ));
                    }
                    if text[i] == b'*' && text[i + 1] == b'/' {
                        out[i] = b' ';
                        out[i + 1] = b' ';
                        i += 2;
                        break;
                    }
                    if text[i] != b'\n' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b',' => pending_comma = Some(i),
            b'}' | b']' => {
                if let Some(p) = pending_comma.take() {
                    out[p] = b' ';
                }
            }
            b'"' => {
                in_string = true;
                pending_comma = None;
            }
            _ => pending_comma = None,
        }
        i += 1;
    }
    Ok(out)
}

fn line_col(text: &[u8], at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let col = at
        - before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}
