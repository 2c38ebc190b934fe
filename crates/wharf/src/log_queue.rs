//! The queue between the code that logs and the thread that writes: bounded
//! in bytes, not lines, and never blocking the caller.
//!
//! tracing-appender's writer bounds its queue in lines. A line is usually a
//! few hundred bytes, but one that quotes a client's 3 MB value is 3 MB, and a
//! slow consumer (a full pipe, a slow disk) then lets a few hundred such lines
//! hold gigabytes. Here the queue holds at most [`QUEUE_BYTES`]; a line that
//! does not fit is dropped and counted (`wharf_log_lines_dropped_total`), and
//! one line holds at most [`MAX_LINE_BYTES`]. In the text format a line break
//! inside a line (in a message or a value) is written as `\n`, so no value
//! can forge a line of its own.

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

/// The most bytes waiting to be written, across all lines.
pub(crate) const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// The most bytes of one line; the rest is cut with a note.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// What the writer thread is handed.
enum Message {
    Line(Vec<u8>),
    /// Write what came before, then stop (the subscriber keeps its senders
    /// for the life of the process, so the queue never closes by itself).
    Stop,
}

/// Hands lines to the writer thread; one per destination (stderr, a file).
#[derive(Clone)]
pub(crate) struct LogQueue {
    tx: mpsc::Sender<Message>,
    queued: Arc<AtomicUsize>,
    dropped: prometheus::IntCounter,
    escape_line_breaks: bool,
}

/// Stops the writer thread once everything queued is written (on drop).
pub(crate) struct Flush {
    done: Option<JoinHandle<()>>,
    tx: mpsc::Sender<Message>,
}

impl Drop for Flush {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Stop);
        if let Some(done) = self.done.take() {
            let _ = done.join();
        }
    }
}

impl LogQueue {
    /// A queue writing to `out` on a thread of its own. `escape_line_breaks`
    /// for the text format (JSON escapes them already).
    pub(crate) fn new<W: Write + Send + 'static>(
        out: W,
        dropped: prometheus::IntCounter,
        escape_line_breaks: bool,
    ) -> (Self, Flush) {
        let (tx, rx) = mpsc::channel::<Message>();
        let queued = Arc::new(AtomicUsize::new(0));
        let writing = queued.clone();
        let done = std::thread::Builder::new()
            .name("wharf-log".into())
            .spawn(move || {
                // Buffered: a burst of lines is one `write`; flushed whenever
                // the queue runs empty, so a line goes out once caught up.
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
                let mut next = rx.recv().ok();
                while let Some(Message::Line(line)) = next {
                    let _ = out.write_all(&line);
                    writing.fetch_sub(line.len(), Ordering::AcqRel);
                    next = match rx.try_recv() {
                        Ok(message) => Some(message),
                        Err(_) => {
                            let _ = out.flush();
                            rx.recv().ok()
                        }
                    };
                }
                let _ = out.flush();
            })
            .ok();
        let queue = Self {
            tx: tx.clone(),
            queued,
            dropped,
            escape_line_breaks,
        };
        (queue, Flush { done, tx })
    }

    fn push(&self, mut line: Vec<u8>) {
        if line.is_empty() {
            return;
        }
        if self.escape_line_breaks {
            line = escape_inner_breaks(line);
        }
        if line.len() > MAX_LINE_BYTES {
            line.truncate(MAX_LINE_BYTES);
            line.extend_from_slice(b"... (line cut)\n");
        }
        let len = line.len();
        if self.queued.fetch_add(len, Ordering::AcqRel) + len > QUEUE_BYTES {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            self.dropped.inc();
            return;
        }
        if self.tx.send(Message::Line(line)).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
    }
}

/// `\n` and `\r` before the line's last byte, written as escapes.
fn escape_inner_breaks(line: Vec<u8>) -> Vec<u8> {
    let body = line.strip_suffix(b"\n").unwrap_or(&line);
    if !body.iter().any(|b| *b == b'\n' || *b == b'\r') {
        return line;
    }
    let mut out = Vec::with_capacity(line.len() + 16);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
    out.push(b'\n');
    out
}

/// One event's bytes, queued when the formatter is done with it.
pub(crate) struct Line<'a> {
    queue: &'a LogQueue,
    buf: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Stop collecting far past the line cap: the rest would be cut anyway.
        let room = (MAX_LINE_BYTES + 1).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        self.queue.push(std::mem::take(&mut self.buf));
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogQueue {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            queue: self,
            buf: Vec::with_capacity(256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes nothing until told to (a slow consumer).
    struct Stalled(Arc<std::sync::Mutex<()>>, Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _gate = wharf_core::sync::lock(&self.0);
            wharf_core::sync::lock(&self.1).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_consumer_costs_at_most_the_queue_and_drops_are_counted() {
        let gate = Arc::new(std::sync::Mutex::new(()));
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = wharf_core::sync::lock(&gate);
        let dropped = prometheus::IntCounter::new("d", "d").unwrap();
        let (queue, flush) = LogQueue::new(
            Stalled(gate.clone(), written.clone()),
            dropped.clone(),
            true,
        );
        // 100 lines of 1 MB (each cut to the line cap) while nothing is written.
        for _ in 0..100 {
            let mut line = Line {
                queue: &queue,
                buf: Vec::new(),
            };
            line.write_all(&vec![b'x'; 1_000_000]).unwrap();
        }
        assert!(queue.queued.load(Ordering::Acquire) <= QUEUE_BYTES);
        // Each line was cut to MAX_LINE_BYTES, so they all fit.
        assert_eq!(dropped.get(), 0);
        for _ in 0..1000 {
            let mut line = Line {
                queue: &queue,
                buf: Vec::new(),
            };
            line.write_all(&vec![b'y'; MAX_LINE_BYTES]).unwrap();
        }
        assert!(queue.queued.load(Ordering::Acquire) <= QUEUE_BYTES);
        assert!(dropped.get() > 0, "nothing was dropped");
        drop(held);
        drop(queue);
        drop(flush);
        assert!(!wharf_core::sync::lock(&written).is_empty());
    }

    #[test]
    fn a_line_break_inside_a_text_line_cannot_start_a_new_line() {
        let out =
            escape_inner_breaks(b"tool call error=unknown tool `x\nFAKE level=INFO`\n".to_vec());
        assert_eq!(out, b"tool call error=unknown tool `x\\nFAKE level=INFO`\n");
    }
}
