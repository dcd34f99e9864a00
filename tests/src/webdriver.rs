//! A small W3C WebDriver client for Debian's chromedriver driving headless
//! Chromium: enough to open pages, fill and submit forms, run a script and
//! take a screenshot.

use serde_json::{json, Value};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

/// A page element.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    try_call(method, url, body).unwrap_or_else(|e| panic!("{e}"))
}

/// A WebDriver call; an error (a stale element while a page loads, say) as text.
fn try_call(method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
    let resp = match (method, body) {
        ("GET", _) => ureq::get(url)
            .config()
            .http_status_as_error(false)
            .build()
            .call(),
        ("DELETE", _) => ureq::delete(url)
            .config()
            .http_status_as_error(false)
            .build()
            .call(),
        (_, b) => ureq::post(url)
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(b.unwrap_or(json!({}))),
    };
    let mut resp = resp.map_err(|e| format!("WebDriver {method} {url}: {e}"))?;
    let status = resp.status();
    let v: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("WebDriver {method} {url}: {status} {v}"));
    }
    Ok(v["value"].clone())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that accepts the test
    /// CA's certificates (`acceptInsecureCerts`), with a fresh profile.
    pub fn start() -> Browser {
        Self::start_with_downloads(None)
    }

    /// Like [`Browser::start`]; downloads are saved in `downloads` without asking.
    pub fn start_with_downloads(downloads: Option<&Path>) -> Browser {
        let port = crate::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed (scripts/install-deps test)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        // The closed network refuses Chromium's background connections:
        // switch them off, as the machine notes advise.
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1100,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.map(|d| d.display().to_string()),
                    "download.prompt_for_download": false,
                    "safebrowsing.enabled": false,
                },
            }
        }}});
        let v = call("POST", &format!("{base}/session"), Some(caps));
        let session = v["sessionId"].as_str().expect("a session id").to_string();
        Browser {
            driver,
            base,
            session,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        call("POST", &self.url("/url"), Some(json!({ "url": url })));
    }

    /// The current address.
    pub fn current_url(&self) -> String {
        call("GET", &self.url("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (up to 15 s) until the address contains `needle`; returns it.
    pub fn wait_url(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let u = self.current_url();
            if u.contains(needle) {
                return u;
            }
            assert!(Instant::now() < deadline, "never reached {needle}; at {u}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to 15 s) until the page's text contains `needle`; returns it.
    pub fn wait_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let t = self.text();
            if t.contains(needle) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "never showed {needle:?}; the page says:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's HTML as the browser has it.
    pub fn source(&self) -> String {
        call("GET", &self.url("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The visible text of the page's body ("" while a page is loading).
    pub fn text(&self) -> String {
        try_call(
            "POST",
            &self.url("/execute/sync"),
            Some(json!({"script": "return document.body ? document.body.innerText : '';", "args": []})),
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Element<'_> {
        let v = call(
            "POST",
            &self.url("/element"),
            Some(json!({"using": "css selector", "value": selector})),
        );
        let Some(id) = v[ELEMENT].as_str() else {
            panic!(
                "no element {selector} ({v}) on {}:\n{}",
                self.current_url(),
                self.source()
            )
        };
        Element {
            browser: self,
            id: id.to_string(),
        }
    }

    /// Runs `script` (a function body) in the page; returns its value.
    pub fn run(&self, script: &str) -> Value {
        call(
            "POST",
            &self.url("/execute/sync"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Runs `script` that calls `arguments[0]` with its result.
    pub fn run_async(&self, script: &str) -> Value {
        call(
            "POST",
            &self.url("/execute/async"),
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The value of cookie `name` (HttpOnly ones too).
    pub fn cookie(&self, name: &str) -> String {
        call("GET", &self.url(&format!("/cookie/{name}")), None)["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Deletes every cookie (a new visitor).
    pub fn clear_cookies(&self) {
        call("DELETE", &self.url("/cookie"), None);
    }

    /// Saves a PNG screenshot of the window to `file`.
    pub fn screenshot(&self, file: &Path) {
        use base64::Engine as _;
        let v = call("GET", &self.url("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .unwrap();
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(file, png).unwrap();
    }
}

impl Element<'_> {
    fn url(&self, tail: &str) -> String {
        self.browser.url(&format!("/element/{}{tail}", self.id))
    }

    /// Types `text` into the element (a file path, for a file input).
    pub fn type_text(&self, text: &str) {
        call("POST", &self.url("/value"), Some(json!({ "text": text })));
    }

    /// Clicks it (a submit button waits for the next page).
    pub fn click(&self) {
        call("POST", &self.url("/click"), Some(json!({})));
    }

    /// Its visible text.
    pub fn text(&self) -> String {
        call("GET", &self.url("/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.base, self.session)).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
