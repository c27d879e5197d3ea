//! `bench-e2e --console`: the console open beside the benchmarked daemon.
//! The daemon serves it (`http.listen` on a free loopback port) and a poller
//! does what an open console page does, at its rate: every
//! [`POLL_INTERVAL`] the overview, the campaign list, the largest
//! campaign's page and the page of that campaign's first identity, while an
//! event stream (`/api/events`) stays open — reopened, and counted, if it
//! drops. Its report (requests, errors, latency, events received) is printed
//! beside the phase's own figures, so the cost of the console to ingest is
//! measured, not assumed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the page polls: the console refreshes a second after the
/// event that moved it, so once a second is a person watching it.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the stream reader looks at the stop flag.
const STREAM_CHECK: Duration = Duration::from_millis(250);

/// A free loopback port for the daemon's console.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One GET with `Connection: close`: the status and the body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    s.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header in the answer"))?;
    let status = std::str::from_utf8(&raw[..head_end])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status in the answer"))?;
    Ok((status, raw[head_end + 4..].to_vec()))
}

/// What the poller saw.
#[derive(Default)]
pub struct Report {
    pub requests: u64,
    /// Requests that failed, by what happened (`503`, `io: …`).
    pub errors: std::collections::BTreeMap<String, u64>,
    pub latencies: Vec<Duration>,
    pub events: u64,
    /// Times the event stream was (re)opened.
    pub streams: u64,
}

impl Report {
    fn record(&mut self, what: std::io::Result<(u16, Vec<u8>)>, took: Duration) -> Option<Vec<u8>> {
        self.requests += 1;
        self.latencies.push(took);
        match what {
            Ok((200, body)) => Some(body),
            Ok((status, _)) => {
                *self.errors.entry(status.to_string()).or_default() += 1;
                None
            }
            Err(e) => {
                *self.errors.entry(format!("io: {}", e.kind())).or_default() += 1;
                None
            }
        }
    }

    /// One line for the benchmark's output.
    pub fn line(&mut self) -> String {
        self.latencies.sort();
        let q = |p: f64| {
            self.latencies
                .get(((self.latencies.len().saturating_sub(1)) as f64 * p) as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let errors: u64 = self.errors.values().sum();
        let kinds = if self.errors.is_empty() {
            String::new()
        } else {
            let k: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect();
            format!(" ({})", k.join(", "))
        };
        format!(
            "console poller: {} requests, {errors} errors{kinds}; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; event stream opened {} times, {} events received",
            self.requests,
            q(0.5),
            q(0.99),
            q(1.0),
            self.streams,
            self.events
        )
    }
}

/// A running poller; [`Poller::finish`] stops it and returns its report.
pub struct Poller {
    stop: Arc<AtomicBool>,
    pages: JoinHandle<Report>,
    stream: JoinHandle<(u64, u64)>,
}

/// The first string at `pointer` in a JSON body.
fn field(body: &[u8], pointer: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.pointer(pointer)?.as_str().map(str::to_string)
}

/// One round of what an open page asks for.
fn round(port: u16, r: &mut Report) {
    let mut timed = |path: &str| {
        let t = Instant::now();
        let what = get(port, path);
        r.record(what, t.elapsed())
    };
    timed("/api/overview");
    let Some(list) = timed("/api/campaigns?offset=0&limit=50") else {
        return;
    };
    let Some(campaign) = field(&list, "/items/0/uuid") else {
        return;
    };
    let Some(page) = timed(&format!("/api/campaigns/{campaign}")) else {
        return;
    };
    if let Some(identity) = field(&page, "/identities/0/uuid") {
        timed(&format!("/api/identities/{identity}"));
    }
}

/// Keeps `/api/events` open until `stop`; (events, opens).
fn follow(port: u16, stop: &AtomicBool) -> (u64, u64) {
    let (mut events, mut opens) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT) else {
            std::thread::sleep(POLL_INTERVAL);
            continue;
        };
        let _ = s.set_read_timeout(Some(STREAM_CHECK));
        if write!(
            s,
            "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .is_err()
        {
            continue;
        }
        opens += 1;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            match r.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if line.starts_with("data:") {
                        events += 1;
                    }
                    line.clear();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    }
    (events, opens)
}

impl Poller {
    /// Starts polling the console on `port`.
    pub fn start(port: u16) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let pages = std::thread::spawn(move || {
            let mut r = Report::default();
            // A page opens once the server listens: refusals before that
            // are the daemon starting, not the console failing.
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            while !s.load(Ordering::Relaxed)
                && TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).is_err()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let t0 = Instant::now();
            let mut n = 0u32;
            while !s.load(Ordering::Relaxed) {
                n += 1;
                round(port, &mut r);
                // On a fixed schedule, as a page's timer is; a slow round
                // delays the next, never bunches them.
                let due = t0 + POLL_INTERVAL * n;
                while !s.load(Ordering::Relaxed) && Instant::now() < due {
                    std::thread::sleep(
                        STREAM_CHECK.min(due.saturating_duration_since(Instant::now())),
                    );
                }
            }
            r
        });
        let s = stop.clone();
        let stream = std::thread::spawn(move || follow(port, &s));
        Poller {
            stop,
            pages,
            stream,
        }
    }

    /// Stops the poller and returns what it saw.
    pub fn finish(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut r = self.pages.join().unwrap_or_default();
        let (events, streams) = self.stream.join().unwrap_or_default();
        r.events = events;
        r.streams = streams;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_errors_by_kind() {
        let mut r = Report::default();
        let ms = Duration::from_millis;
        assert!(r.record(Ok((200, b"{}".to_vec())), ms(2)).is_some());
        assert!(r.record(Ok((503, Vec::new())), ms(4)).is_none());
        assert!(r
            .record(
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                ms(1)
            )
            .is_none());
        let line = r.line();
        assert!(
            line.starts_with(
                "console poller: 3 requests, 2 errors (503 ×1, io: connection refused ×1)"
            ),
            "{line}"
        );
        assert!(
            line.contains("p50 2.0 ms") && line.contains("max 4.0 ms"),
            "{line}"
        );
        assert_eq!(
            field(br#"{"items": [{"uuid": "c1"}]}"#, "/items/0/uuid").as_deref(),
            Some("c1")
        );
        assert_eq!(field(b"not json", "/items/0/uuid"), None);
    }
}
