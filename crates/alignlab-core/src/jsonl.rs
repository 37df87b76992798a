//! JSONL lines from any reader, one at a time: a 1 GB file is read with one line's worth of memory. Every line
//! is bounded — an over-long line is reported (and skipped past without being held) instead of filling memory —
//! and a UTF-8 byte-order mark, `\r\n` endings and a missing final newline are accepted, as in the readers of
//! [`crate::data`].

use std::io::{self, BufRead};

/// One line of input, numbered from 1, without its line ending.
#[derive(Debug, PartialEq)]
pub enum Line {
    Text { line: usize, text: String },
    Bad { line: usize, problem: Problem },
}

/// Why a line was not returned.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    /// Longer than the bound: its bytes were skipped, not kept.
    #[error("line is {len} bytes, more than the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("not UTF-8 (byte {at})")]
    NotUtf8 { at: usize },
}

/// An iterator over the lines of `reader`; blank lines are skipped. I/O errors end the iteration with the error.
pub struct JsonlLines<R> {
    reader: R,
    max_line_bytes: usize,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> JsonlLines<R> {
    pub fn new(reader: R, max_line_bytes: usize) -> Self {
        JsonlLines { reader, max_line_bytes, line: 0, buf: Vec::new(), done: false }
    }

    /// Reads one raw line into `buf` up to the bound; returns (bytes consumed, whether it was over the bound).
    fn read_line(&mut self) -> io::Result<(usize, bool)> {
        self.buf.clear();
        let (mut consumed, mut over) = (0, false);
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok((consumed, over));
            }
            let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = (self.max_line_bytes + 2).saturating_sub(self.buf.len()); // + "\r\n"
            if take > room {
                over = true;
            }
            if !over {
                self.buf.extend_from_slice(&chunk[..take]);
            }
            self.reader.consume(take);
            consumed += take;
            if end {
                return Ok((consumed, over));
            }
        }
    }
}

impl<R: BufRead> Iterator for JsonlLines<R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let (consumed, over) = match self.read_line() {
                Ok(r) => r,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if consumed == 0 {
                self.done = true;
                return None;
            }
            self.line += 1;
            let line = self.line;
            let max = self.max_line_bytes;
            if over {
                return Some(Ok(Line::Bad { line, problem: Problem::TooLong { len: consumed, max } }));
            }
            let mut bytes = self.buf.as_slice();
            if line == 1 {
                bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
            }
            bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
            bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            if bytes.len() > max {
                return Some(Ok(Line::Bad { line, problem: Problem::TooLong { len: bytes.len(), max } }));
            }
            match std::str::from_utf8(bytes) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => return Some(Ok(Line::Text { line, text: text.to_string() })),
                Err(e) => return Some(Ok(Line::Bad { line, problem: Problem::NotUtf8 { at: e.valid_up_to() } })),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        // a tiny buffer so that lines span many fill_buf calls
        JsonlLines::new(io::BufReader::with_capacity(3, input), max).map(Result::unwrap).collect()
    }

    fn text(line: usize, text: &str) -> Line {
        Line::Text { line, text: text.into() }
    }

    #[test]
    fn lines_are_numbered_trimmed_of_endings_and_blank_ones_skipped() {
        let got = lines("\u{feff}{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}".as_bytes(), 64);
        assert_eq!(got, vec![text(1, "{\"a\":1}"), text(4, "{\"b\":2}"), text(5, "{\"c\":3}")]);
    }

    #[test]
    fn over_long_and_non_utf8_lines_are_bad_and_the_next_line_still_reads() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\nok\n\xff\xfe\nfine");
        let got = lines(&input, 10);
        assert_eq!(
            got,
            vec![
                Line::Bad { line: 1, problem: Problem::TooLong { len: 101, max: 10 } },
                text(2, "ok"),
                Line::Bad { line: 3, problem: Problem::NotUtf8 { at: 0 } },
                text(4, "fine"),
            ]
        );
        // exactly at the bound, with or without \r\n, is fine
        assert_eq!(lines(b"0123456789\r\n0123456789", 10), vec![text(1, "0123456789"), text(2, "0123456789")]);
    }

    /// Lines come one at a time from a reader that never ends: nothing waits for (or holds) the whole input.
    #[test]
    fn reads_lazily_from_an_endless_reader() {
        struct Endless(usize);
        impl io::Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let line = b"{\"prompt\":\"p\"}\n";
                for b in buf.iter_mut() {
                    *b = line[self.0 % line.len()];
                    self.0 += 1;
                }
                Ok(buf.len())
            }
        }
        let reader = io::BufReader::with_capacity(7, Endless(0));
        let first: Vec<Line> = JsonlLines::new(reader, 64).take(1000).map(Result::unwrap).collect();
        assert_eq!(first.len(), 1000);
        assert_eq!(first[999], text(1000, "{\"prompt\":\"p\"}"));
    }
}
