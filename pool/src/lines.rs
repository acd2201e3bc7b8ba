//! Bounded, lossy line reading for worker output and the channel.
//!
//! Workers are not trusted to print valid UTF-8 or to end their lines: a
//! plain `lines()` stops at the first invalid byte (leaving the pipe
//! undrained, so the worker blocks on its next write) and buffers an
//! unterminated line without bound. This reader replaces invalid bytes,
//! splits over-long lines and is cancel safe (partial data stays buffered).

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// Longest line kept whole; longer ones arrive in pieces of this size.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Read buffer of one reader (tokio's default is 8 KiB).
const READ_BUFFER: usize = 1024;

/// Line buffer kept between lines; a longer one is freed after its line.
const KEEP_BUFFER: usize = 4096;

/// Reads `\n`-terminated lines of at most `max` bytes.
#[derive(Debug)]
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader with lines of at most `max` bytes.
    pub(crate) fn new(reader: R, max: usize) -> LineReader<R> {
        LineReader {
            // Small: three readers per worker (channel, stdout, stderr),
            // and their lines are short; a long line takes a few reads.
            inner: BufReader::with_capacity(READ_BUFFER, reader),
            buf: Vec::new(),
            max: max.max(1),
        }
    }

    /// The next line without its line ending; `None` at end of file.
    /// Cancel safe: bytes read before a cancellation are kept.
    pub(crate) async fn next_line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            let room = self.max.saturating_sub(self.buf.len()).max(1) as u64;
            let n = (&mut self.inner)
                .take(room)
                .read_until(b'\n', &mut self.buf)
                .await?;
            if n == 0 && self.buf.is_empty() {
                return Ok(None);
            }
            if n == 0 || self.buf.last() == Some(&b'\n') || self.buf.len() >= self.max {
                let line = String::from_utf8_lossy(&self.buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                self.buf.clear();
                // One long line must not pin its buffer for the worker's
                // life: three readers per worker add up.
                if self.buf.capacity() > KEEP_BUFFER {
                    self.buf = Vec::new();
                }
                return Ok(Some(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().await.expect("reads") {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn a_long_line_does_not_pin_its_buffer() {
        let mut input = vec![b'x'; 20_000];
        input.extend_from_slice(b"\nshort\n");
        let mut r = LineReader::new(&input[..], MAX_LINE);
        let long = r.next_line().await.expect("reads").expect("a line");
        assert_eq!(long.len(), 20_000);
        assert!(r.buf.capacity() <= KEEP_BUFFER, "{}", r.buf.capacity());
        assert_eq!(
            r.next_line().await.expect("reads").as_deref(),
            Some("short")
        );
    }

    #[tokio::test]
    async fn lines_table() {
        let table: &[(&[u8], usize, &[&str])] = &[
            (b"a\nb\n", 100, &["a", "b"]),
            (b"a\r\nb", 100, &["a", "b"]),
            (b"", 100, &[]),
            (b"\n\n", 100, &["", ""]),
            (b"abcdefgh\n", 3, &["abc", "def", "gh"]),
            (
                b"ok \xff\xfe bytes\nnext\n",
                100,
                &["ok \u{fffd}\u{fffd} bytes", "next"],
            ),
        ];
        for (input, max, want) in table {
            assert_eq!(
                read_all(input, *max).await,
                *want,
                "input {input:?} max {max}"
            );
        }
    }
}
