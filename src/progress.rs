//! Progress of long work (downloads, the squashfs and the ISO of a live image, writing and verifying an image)
//! on stderr: an indicatif bar on a terminal; otherwise plain lines, because tests and CI logs read them: one
//! when the work starts, one per tenth done or every [`PLAIN_LINE_EVERY`], and one when it ends (or stops on an
//! error) with the time it took. Nothing under `-q` ([`crate::verbosity`]).
//!
//! At the crate root, beside `verbosity`, so every layer from the store up can use it; it knows nothing of
//! what is counted beyond bytes or items.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Without a terminal, a line at least this often while work goes on (besides one per tenth).
pub const PLAIN_LINE_EVERY: Duration = Duration::from_secs(10);

/// What a [`Progress`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Items,
}

/// One piece of long work, labelled (`writing /dev/sdb`, `downloading`). Shared between threads by reference.
/// Dropped without [`Progress::finish`] (an error), it says where it stopped.
pub struct Progress {
    label: String,
    unit: Unit,
    total: Option<u64>,
    started: Instant,
    output: Output,
}

enum Output {
    Hidden,
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

impl Progress {
    /// `total` bytes to go through.
    pub fn bytes(label: impl Into<String>, total: u64) -> Progress {
        Progress::new(label.into(), Unit::Bytes, Some(total))
    }

    /// `total` items (downloads, files) to go through.
    pub fn items(label: impl Into<String>, total: u64) -> Progress {
        Progress::new(label.into(), Unit::Items, Some(total))
    }

    /// Work of unknown size: a spinner on a terminal, a start and an end line otherwise.
    pub fn stage(label: impl Into<String>) -> Progress {
        Progress::new(label.into(), Unit::Items, None)
    }

    fn new(label: String, unit: Unit, total: Option<u64>) -> Progress {
        let output = if crate::verbosity::quiet() {
            Output::Hidden
        } else if std::io::stderr().is_terminal() {
            Output::Bar(bar(&label, unit, total))
        } else {
            Output::Lines(Mutex::new(Lines::start(
                Box::new(std::io::stderr()),
                &label,
                unit,
                total,
            )))
        };
        Progress {
            label,
            unit,
            total,
            started: Instant::now(),
            output,
        }
    }

    /// `done` of the total so far.
    pub fn set(&self, done: u64) {
        match &self.output {
            Output::Hidden => {}
            Output::Bar(bar) => bar.set_position(done),
            Output::Lines(lines) => {
                let elapsed = self.started.elapsed();
                lines
                    .lock()
                    .expect("no panics while locked")
                    .update(self, done, elapsed);
            }
        }
    }

    /// One more item done, named `what` (shown beside the count).
    pub fn done_one(&self, what: &str) {
        match &self.output {
            Output::Hidden => {}
            Output::Bar(bar) => {
                bar.set_message(what.to_string());
                bar.inc(1);
            }
            Output::Lines(lines) => {
                let elapsed = self.started.elapsed();
                let mut lines = lines.lock().expect("no panics while locked");
                lines.message = what.to_string();
                let done = lines.done + 1;
                lines.update(self, done, elapsed);
            }
        }
    }

    /// The work ended: clears the bar and prints the time it took.
    pub fn finish(mut self) {
        self.end(true);
    }

    fn end(&mut self, finished: bool) {
        let elapsed = self.started.elapsed();
        match std::mem::replace(&mut self.output, Output::Hidden) {
            Output::Hidden => {}
            Output::Bar(bar) => {
                let done = bar.position();
                bar.finish_and_clear();
                eprintln!("{}", end_line(self, done, elapsed, finished));
            }
            Output::Lines(lines) => {
                let mut lines = lines.into_inner().expect("no panics while locked");
                let line = end_line(self, lines.done, elapsed, finished);
                lines.print(&line);
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end(false);
    }
}

/// The terminal's bar (bytes or items with a total) or spinner (without).
fn bar(label: &str, unit: Unit, total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(bar_style(unit, total.is_some()));
    bar.set_prefix(label.to_string());
    if total.is_none() {
        // Nothing reports how far it is, so the spinner turns by itself to show it is alive.
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    bar
}

fn bar_style(unit: Unit, has_total: bool) -> ProgressStyle {
    let template = match (unit, has_total) {
        (_, false) => "{spinner} {prefix}: {elapsed} {wide_msg}",
        (Unit::Bytes, true) => {
            "{prefix}: [{wide_bar}] {binary_bytes} of {binary_total_bytes} ({percent}%), {binary_bytes_per_sec}, \
             {eta} left"
        }
        (Unit::Items, true) => "{prefix}: [{bar:20}] {pos} of {len} ({percent}%) {wide_msg}",
    };
    ProgressStyle::with_template(template)
        .expect("the templates above are valid")
        .progress_chars("=> ")
}

/// The plain lines' state: what was printed last, so a line comes per tenth or per [`PLAIN_LINE_EVERY`].
struct Lines {
    sink: Box<dyn Write + Send>,
    done: u64,
    /// The last item's name, shown on the next line.
    message: String,
    tenth: u64,
    printed: Duration,
}

impl Lines {
    fn start(mut sink: Box<dyn Write + Send>, label: &str, unit: Unit, total: Option<u64>) -> Lines {
        let line = match total {
            Some(total) => format!("{label}: started ({})", amount(unit, total)),
            None => format!("{label}: started"),
        };
        // A log that cannot be written is no reason to stop the work.
        let _ = writeln!(sink, "{line}");
        Lines {
            sink,
            done: 0,
            message: String::new(),
            tenth: 0,
            printed: Duration::ZERO,
        }
    }

    fn update(&mut self, progress: &Progress, done: u64, elapsed: Duration) {
        self.done = done;
        let tenth = match progress.total {
            Some(total) if done < total => (done * 10).checked_div(total).unwrap_or(10),
            // All done: the end line says so.
            _ => return,
        };
        if tenth <= self.tenth && elapsed < self.printed + PLAIN_LINE_EVERY {
            return;
        }
        self.tenth = tenth;
        self.printed = elapsed;
        let mut line = format!("{}: {}", progress.label, so_far(progress.unit, done, progress.total));
        if let Some(rate) = rate(progress.unit, done, elapsed) {
            line += &format!(", {rate}");
        }
        if !self.message.is_empty() {
            line += &format!(": {}", self.message);
        }
        self.print(&line);
    }

    fn print(&mut self, line: &str) {
        let _ = writeln!(self.sink, "{line}");
    }
}

/// `writing /dev/sdb: done in 1.2 s (8.0 MiB, 6.5 MiB/s)`, or `stopped after ... at 4.0 MiB of 8.0 MiB`.
fn end_line(progress: &Progress, done: u64, elapsed: Duration, finished: bool) -> String {
    let seconds = elapsed.as_secs_f64();
    if !finished {
        return format!(
            "{}: stopped after {seconds:.1} s at {}",
            progress.label,
            so_far(progress.unit, done, progress.total)
        );
    }
    let mut line = format!("{}: done in {seconds:.1} s", progress.label);
    if progress.total.is_some() {
        line += &format!(" ({}", amount(progress.unit, done));
        if let Some(rate) = rate(progress.unit, done, elapsed) {
            line += &format!(", {rate}");
        }
        line += ")";
    }
    line
}

/// `3.2 MiB of 8.0 MiB (40%)`, `5 of 12 (41%)`, or the count alone without a total.
fn so_far(unit: Unit, done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => {
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            format!("{} of {} ({percent}%)", amount(unit, done), amount(unit, total))
        }
        None => amount(unit, done),
    }
}

fn amount(unit: Unit, n: u64) -> String {
    match unit {
        Unit::Bytes => human_size(n),
        Unit::Items => n.to_string(),
    }
}

/// Bytes per second, once there is time to measure it by.
fn rate(unit: Unit, done: u64, elapsed: Duration) -> Option<String> {
    let seconds = elapsed.as_secs_f64();
    (unit == Unit::Bytes && seconds >= 0.05).then(|| format!("{}/s", human_size((done as f64 / seconds) as u64)))
}

/// `14.9 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A sink the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The plain lines for a sequence of (seconds since the start, amount done), then the end line.
    fn plain(label: &str, unit: Unit, total: Option<u64>, steps: &[(f64, u64)], finished: bool) -> Vec<String> {
        let captured = Captured::default();
        let progress = Progress {
            label: label.to_string(),
            unit,
            total,
            started: Instant::now(),
            output: Output::Hidden,
        };
        let mut lines = Lines::start(Box::new(captured.clone()), label, unit, total);
        let mut last = Duration::ZERO;
        for &(seconds, done) in steps {
            last = Duration::from_secs_f64(seconds);
            lines.update(&progress, done, last);
        }
        let end = end_line(&progress, lines.done, last, finished);
        lines.print(&end);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn plain_lines_come_per_tenth_or_after_a_while_and_end_with_the_time() {
        const MIB: u64 = 1 << 20;
        // Bytes: 10 MiB in 1 MiB steps, one a second after a slow start: a line per tenth, none for 100%.
        let steps: Vec<(f64, u64)> = (1..=10).map(|i| (i as f64, i * MIB)).collect();
        let lines = plain("writing /dev/sdb", Unit::Bytes, Some(10 * MIB), &steps, true);
        assert_eq!(lines.len(), 11, "{lines:#?}");
        assert_eq!(lines[0], "writing /dev/sdb: started (10.0 MiB)");
        assert_eq!(lines[1], "writing /dev/sdb: 1.0 MiB of 10.0 MiB (10%), 1.0 MiB/s");
        assert_eq!(lines[10], "writing /dev/sdb: done in 10.0 s (10.0 MiB, 1.0 MiB/s)");

        // Many small steps within one tenth: nothing until PLAIN_LINE_EVERY has passed.
        let steps: Vec<(f64, u64)> = (1..=30).map(|i| (i as f64, i)).collect();
        let lines = plain("downloading", Unit::Items, Some(1000), &steps, true);
        assert_eq!(
            lines,
            [
                "downloading: started (1000)",
                "downloading: 10 of 1000 (1%)",
                "downloading: 20 of 1000 (2%)",
                "downloading: 30 of 1000 (3%)",
                "downloading: done in 30.0 s (30)",
            ]
        );

        // An error on the way: where it stopped.
        let lines = plain(
            "verifying /dev/sdb",
            Unit::Bytes,
            Some(8 * MIB),
            &[(0.5, 4 * MIB)],
            false,
        );
        assert_eq!(
            lines.last().unwrap(),
            "verifying /dev/sdb: stopped after 0.5 s at 4.0 MiB of 8.0 MiB (50%)"
        );

        // Unknown size: a start and an end.
        let lines = plain("writing the ISO", Unit::Items, None, &[], true);
        assert_eq!(lines, ["writing the ISO: started", "writing the ISO: done in 0.0 s"]);
    }

    #[test]
    fn the_item_done_last_is_named() {
        let captured = Captured::default();
        let progress = Progress {
            label: "downloading".to_string(),
            unit: Unit::Items,
            total: Some(4),
            started: Instant::now(),
            output: Output::Hidden,
        };
        let mut lines = Lines::start(Box::new(captured.clone()), "downloading", Unit::Items, Some(4));
        lines.message = "hello_2.12.deb".to_string();
        lines.update(&progress, 1, Duration::from_secs(1));
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with("downloading: 1 of 4 (25%): hello_2.12.deb\n"), "{text}");
    }

    #[test]
    fn terminal_styles_are_valid() {
        for unit in [Unit::Bytes, Unit::Items] {
            for has_total in [true, false] {
                bar_style(unit, has_total);
            }
        }
    }

    #[test]
    fn sizes_are_shown_in_binary_units() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536 * 1024 * 1024), "1.5 GiB");
    }
}
