//! The log of a served application, collected line by line as it is written.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for an expected log line.
const LOG_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
pub struct Logs(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Logs {
    /// Collects the lines of `source` on a thread of its own.
    pub fn collect(source: impl Read + Send + 'static) -> Logs {
        let logs = Logs::default();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(source).lines() {
                let Ok(line) = line else { break };
                sink.push(line);
            }
        });
        logs
    }

    /// Follows the file at `path` as it grows, until this `Logs` is dropped.
    pub fn tail(path: &std::path::Path) -> Logs {
        let mut file = std::fs::File::open(path).expect("open the log to follow");
        let logs = Logs::default();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut chunk = [0u8; 8192];
            // Until every other handle is gone.
            while Arc::strong_count(&sink.0) > 1 {
                match file.read(&mut chunk) {
                    Ok(0) | Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    Ok(n) => {
                        pending.extend_from_slice(&chunk[..n]);
                        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            sink.push(String::from_utf8_lossy(&line[..end]).into_owned());
                        }
                    }
                }
            }
        });
        logs
    }

    pub fn push(&self, line: String) {
        let (lines, changed) = &*self.0;
        lines.lock().unwrap().push(line);
        changed.notify_all();
    }

    pub fn text(&self) -> String {
        self.0.0.lock().unwrap().join("\n")
    }

    /// How many lines hold `needle`, once at least `at_least` do (or the wait is over).
    pub fn count_at_least(&self, needle: &str, at_least: usize) -> usize {
        let deadline = Instant::now() + LOG_WAIT;
        let (lines, changed) = &*self.0;
        let mut lines = lines.lock().unwrap();
        loop {
            let count = lines.iter().filter(|l| l.contains(needle)).count();
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return count;
            };
            if count >= at_least {
                return count;
            }
            lines = changed.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// The first line holding every one of `needles`, waiting for it to appear.
    pub fn wait_for(&self, needles: &[&str]) -> String {
        self.wait_for_within(needles, LOG_WAIT)
            .unwrap_or_else(|| panic!("no log line with {needles:?} in:\n{}", self.text()))
    }

    pub fn wait_for_within(&self, needles: &[&str], wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        let (lines, changed) = &*self.0;
        let mut lines = lines.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| needles.iter().all(|n| l.contains(n))) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = changed.wait_timeout(lines, left).unwrap().0;
        }
    }
}
