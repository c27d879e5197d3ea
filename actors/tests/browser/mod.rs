//! A small WebDriver client for the console's browser test: HTTP/1.1 with
//! JSON bodies to a chromedriver on loopback (std only: the protocol is a
//! handful of requests, and a client crate would double the test's build),
//! plus the Chromium and chromedriver processes.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One HTTP/1.1 request; returns (status, body).
pub fn http(
    method: &str,
    port: u16,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, String)> {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    request(method, port, path, &[], payload.as_bytes())
}

/// One HTTP/1.1 request with extra headers and a raw body (any bytes);
/// returns (status, body).
pub fn request(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> std::io::Result<(u16, String)> {
    exchange(method, port, path, headers, payload).map(|a| (a.status, a.body))
}

/// An answer with its headers (names lowercased).
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// [`request`], keeping the answer's headers.
pub fn exchange(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        payload.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(payload)?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (mut length, mut chunked) = (None, false);
    let mut kept = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            kept.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            out.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        out.resize(n, 0);
        r.read_exact(&mut out)?;
    } else {
        r.read_to_end(&mut out)?;
    }
    Ok(Answer {
        status,
        headers: kept,
        body: String::from_utf8_lossy(&out).into_owned(),
    })
}

/// A GET answered with JSON.
pub fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (status, body) = http("GET", port, path, None).expect("the server answers");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The packages the browser test needs, checked before anything starts.
pub fn require_browser() -> (String, String) {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {n}"))
                .output()
                .ok()?;
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (!p.is_empty()).then_some(p)
        })
    };
    match (find(&["chromium", "chromium-browser"]), find(&["chromedriver"])) {
        (Some(b), Some(d)) => (b, d),
        _ => panic!(
            "the console's browser test needs Chromium and chromedriver: install the Debian packages `chromium chromium-driver` (apt-get install chromium chromium-driver)"
        ),
    }
}

/// A chromedriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: std::path::PathBuf,
}

impl Browser {
    pub fn start(width: u32, height: u32) -> Browser {
        let (chromium, chromedriver) = require_browser();
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http("GET", port, "/status", None).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = std::env::temp_dir().join(format!(
            "clusterd-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ]}}}});
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
            profile,
        };
        let v = b.call("POST", "/session", Some(caps));
        b.session = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_string();
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) =
            http(method, self.port, path, body.as_ref()).expect("chromedriver answers");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(status < 300, "WebDriver {method} {path}: {status} {text}");
        v["value"].clone()
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    /// Runs a script in the page and returns its value.
    pub fn script(&self, body: &str) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": body, "args": []})),
        )
    }

    /// The number of elements matching `css`.
    pub fn count(&self, css: &str) -> u64 {
        let s = format!("return document.querySelectorAll({}).length;", json!(css));
        self.script(&s).as_u64().unwrap_or(0)
    }

    /// An attribute of the first element matching `css`.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let s = format!(
            "const e = document.querySelector({}); return e ? e.getAttribute({}) : null;",
            json!(css),
            json!(name)
        );
        self.script(&s).as_str().map(str::to_string)
    }

    /// Waits until `css` matches at least `n` elements.
    pub fn wait_for(&self, css: &str, n: u64, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while self.count(css) < n {
            if Instant::now() > deadline {
                let state = self.script(
                    "const v = document.querySelector('#view'); return [location.href, v && v.dataset.state, v && v.textContent.slice(0, 400), performance.getEntriesByType('resource').map((r) => r.name + ' ' + Math.round(r.duration))];",
                );
                panic!("timed out waiting for {n} × `{css}`: {state}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Saves a PNG screenshot.
    pub fn screenshot(&self, path: &std::path::Path) {
        let v = self.call("GET", &self.session_path("/screenshot"), None);
        let png = decode_base64(v.as_str().expect("a screenshot"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http("DELETE", self.port, &self.session_path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (the screenshot encoding).
fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
