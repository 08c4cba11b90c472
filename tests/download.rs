//! `simdnet::data::download`, `.gz`-only data directories, and `train --download`, against
//! HTTP servers that the tests run on 127.0.0.1 (there is no other network here).
//!
//! Most tests use a tiny synthetic MNIST (4x4 images) whose digests they compute and pass to
//! the library; the real-MNIST ones gzip `$MNIST_DIR`'s files and check them against the
//! built-in MNIST digests, and print a NOTICE and pass when `MNIST_DIR` is unset.

#![cfg(feature = "download")]

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use simdnet::Error;
use simdnet::data::download::{
    DownloadOptions, DownloadProgress, FileReport, MNIST_FILES, Outcome, RemoteFile, download,
};
use simdnet::data::gz::{self, Resolved};
use simdnet::data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use simdnet::data::{LoadMode, Mnist, MnistOptions};
use tempfile::TempDir;

use common::idx;

const NAMES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 server on 127.0.0.1.

/// What the server does for one path.
#[derive(Clone)]
enum Reply {
    /// 200 with the whole body.
    Body(Vec<u8>),
    /// 200 announcing the whole body, then half of it, then the connection is closed.
    Cut(Vec<u8>),
    /// 200 announcing the whole body, then half of it, then silence (until the server stops).
    Stall(Vec<u8>),
    /// This status, no body.
    Status(u16),
}

/// A server answering GET requests by path from a fixed table (404 for anything else), one
/// thread per connection, every response with `Connection: close`. It stops when dropped,
/// and after two minutes at most in any case.
struct Server {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(routes: HashMap<String, Reply>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let base = format!("http://{}/", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let routes = Arc::new(routes);
        let thread = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (routes, requests, stop) = (
                                Arc::clone(&routes),
                                Arc::clone(&requests),
                                Arc::clone(&stop),
                            );
                            thread::spawn(move || serve(stream, &routes, &requests, &stop));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Server {
            base,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// The paths requested so far.
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    routes: &HashMap<String, Reply>,
    requests: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    requests.lock().unwrap().push(path.clone());
    let header = |status: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let _ = match routes.get(&path) {
        Some(Reply::Body(body)) => stream
            .write_all(header("200 OK", body.len()).as_bytes())
            .and_then(|()| stream.write_all(body)),
        Some(Reply::Cut(body)) => stream
            .write_all(header("200 OK", body.len()).as_bytes())
            .and_then(|()| stream.write_all(&body[..body.len() / 2]))
            .and_then(|()| stream.flush())
            .and_then(|()| stream.shutdown(std::net::Shutdown::Both)),
        Some(Reply::Stall(body)) => {
            let sent = stream
                .write_all(header("200 OK", body.len()).as_bytes())
                .and_then(|()| stream.write_all(&body[..body.len() / 2]))
                .and_then(|()| stream.flush());
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                thread::sleep(Duration::from_millis(20));
            }
            sent
        }
        Some(Reply::Status(code)) => {
            stream.write_all(header(&format!("{code} Nope"), 0).as_bytes())
        }
        None => stream.write_all(header("404 Not Found", 0).as_bytes()),
    };
}

/// A base URL where nothing listens (a port just released).
fn dead_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

// ---------------------------------------------------------------------------------------------
// Data.

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A tiny MNIST: 30 training and 10 test images of 4x4, labels 0 to 3; (name, raw bytes).
fn synthetic() -> Vec<(&'static str, Vec<u8>)> {
    let images = |count: u32, salt: u32| {
        let pixels: Vec<u8> = (0..count * 16)
            .map(|i| ((i * 37 + salt) % 256) as u8)
            .collect();
        idx(0x08, &[count, 4, 4], &pixels)
    };
    let labels = |count: u32| {
        let labels: Vec<u8> = (0..count).map(|i| (i % 4) as u8).collect();
        idx(0x08, &[count], &labels)
    };
    vec![
        (TRAIN_IMAGES, images(30, 1)),
        (TRAIN_LABELS, labels(30)),
        (TEST_IMAGES, images(10, 2)),
        (TEST_LABELS, labels(10)),
    ]
}

/// The server's routes for `files` gzipped, under `/prefix/NAME.gz`.
fn routes(prefix: &str, files: &[(&str, Vec<u8>)]) -> HashMap<String, Reply> {
    files
        .iter()
        .map(|(name, raw)| (format!("/{prefix}{name}.gz"), Reply::Body(gzip(raw))))
        .collect()
}

/// Options for `files` (their own digests), from `mirrors`, with short timeouts.
fn options<S: AsRef<str>>(files: &[(&str, Vec<u8>)], mirrors: &[S]) -> DownloadOptions {
    DownloadOptions {
        mirrors: mirrors.iter().map(|m| m.as_ref().to_string()).collect(),
        files: files
            .iter()
            .map(|(name, raw)| RemoteFile::new(*name, sha256(raw)))
            .collect(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
    }
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The four raw names and their archives, sorted.
fn complete_listing() -> Vec<String> {
    let mut names: Vec<String> = NAMES
        .iter()
        .flat_map(|n| [n.to_string(), format!("{n}.gz")])
        .collect();
    names.sort();
    names
}

fn small_split() -> MnistOptions {
    MnistOptions {
        validation_size: 5,
        load: LoadMode::Mmap,
    }
}

/// Records what [`download`] reports.
#[derive(Default)]
struct Recorder {
    fetched: Vec<String>,
    failures: Vec<String>,
    finished: Vec<FileReport>,
    last_received: u64,
}

impl DownloadProgress for Recorder {
    fn fetching(&mut self, _name: &str, url: &str, _total: Option<u64>) {
        self.fetched.push(url.to_string());
    }
    fn received(&mut self, received: u64) {
        assert!(received >= self.last_received || received < 1 << 16);
        self.last_received = received;
    }
    fn attempt_failed(&mut self, name: &str, error: &Error, retrying: bool) {
        self.failures
            .push(format!("{name}: {error} (retrying: {retrying})"));
    }
    fn finished(&mut self, report: &FileReport) {
        self.finished.push(report.clone());
    }
}

/// The attempts of a [`Error::DownloadFailed`], or a panic.
fn attempts(err: &Error, file: &str) -> Vec<Error> {
    match err {
        Error::DownloadFailed { file: f, attempts } => {
            assert_eq!(f, &format!("{file}.gz"), "{err}");
            attempts.clone()
        }
        other => panic!("expected DownloadFailed for {file}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The library.

#[test]
fn downloads_verifies_and_unpacks_from_a_local_mirror() {
    let files = synthetic();
    let server = Server::start(routes("mnist/", &files));
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("new").join("mnist"); // created by download
    let mirror = format!("{}mnist", server.base); // no trailing slash: one is added

    let mut rec = Recorder::default();
    let report = download(&dir, &options(&files, &[&mirror]), &mut rec).unwrap();
    assert_eq!(report.files.len(), 4);
    for ((name, raw), file) in files.iter().zip(&report.files) {
        let url = format!("{mirror}/{name}.gz");
        assert_eq!(file.name, *name);
        assert_eq!(file.path, dir.join(name));
        assert_eq!(
            file.outcome,
            Outcome::Downloaded {
                url,
                bytes: gzip(raw).len() as u64
            }
        );
        assert_eq!(&fs::read(dir.join(name)).unwrap(), raw, "{name}");
        assert_eq!(fs::read(dir.join(format!("{name}.gz"))).unwrap(), gzip(raw));
    }
    assert_eq!(
        report.downloaded_bytes(),
        files.iter().map(|(_, r)| gzip(r).len() as u64).sum::<u64>()
    );
    assert_eq!(rec.fetched.len(), 4);
    assert_eq!(rec.finished, report.files);
    assert!(rec.failures.is_empty(), "{:?}", rec.failures);
    assert_eq!(
        listing(&dir),
        complete_listing(),
        "no temporary files are left"
    );

    let mnist = Mnist::open(&dir, &small_split()).unwrap();
    assert_eq!(mnist.training().len(), 25);
    assert_eq!(mnist.test().len(), 10);

    // A second run only checks: nothing is fetched.
    let before = server.requests().len();
    let again = download(&dir, &options(&files, &[mirror]), &mut ()).unwrap();
    assert!(again.files.iter().all(|f| f.outcome == Outcome::Present));
    assert_eq!(server.requests().len(), before);
}

#[test]
fn corrupted_file_is_rejected_and_not_left_behind() {
    let files = synthetic();
    let mut served = routes("", &files);
    // The training labels as served decompress to something else: one label changed.
    let mut wrong = files[1].1.clone();
    *wrong.last_mut().unwrap() ^= 1;
    served.insert(format!("/{TRAIN_LABELS}.gz"), Reply::Body(gzip(&wrong)));
    let server = Server::start(served);
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("mnist");

    let err = download(&dir, &options(&files, &[&server.base]), &mut ()).unwrap_err();
    let tried = attempts(&err, TRAIN_LABELS);
    assert_eq!(tried.len(), 1);
    let url = format!("{}{TRAIN_LABELS}.gz", server.base);
    match &tried[0] {
        Error::DigestMismatch {
            file,
            origin,
            expected,
            actual,
            discarded,
        } => {
            assert_eq!(file, TRAIN_LABELS);
            assert_eq!(origin, &url);
            assert_eq!(expected, &sha256(&files[1].1));
            assert_eq!(actual, &sha256(&wrong));
            assert!(*discarded);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    let message = err.to_string();
    for needle in [TRAIN_LABELS, &url, &sha256(&files[1].1), &sha256(&wrong)] {
        assert!(message.contains(needle), "{message} does not name {needle}");
    }
    // The file before it is complete; the rejected one left nothing (no archive, no raw
    // file, no temporary), and the ones after it were not attempted.
    assert_eq!(
        listing(&dir),
        [TRAIN_IMAGES.to_string(), format!("{TRAIN_IMAGES}.gz")]
    );
}

#[test]
fn real_digests_reject_other_data() {
    // The built-in MNIST digests: the synthetic files are not MNIST.
    let files = synthetic();
    let server = Server::start(routes("", &files));
    let tmp = TempDir::new().unwrap();
    let mut opts = DownloadOptions::with_mirrors([server.base.clone()]);
    opts.read_timeout = Duration::from_secs(5);
    let err = download(tmp.path(), &opts, &mut ()).unwrap_err();
    let tried = attempts(&err, TRAIN_IMAGES);
    assert!(
        matches!(&tried[..], [Error::DigestMismatch { expected, .. }] if expected == MNIST_FILES[0].1),
        "{err}"
    );
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn connection_dropped_half_way_leaves_nothing() {
    let files = synthetic();
    let mut served = routes("", &files);
    served.insert(format!("/{TRAIN_IMAGES}.gz"), Reply::Cut(gzip(&files[0].1)));
    let server = Server::start(served);
    let tmp = TempDir::new().unwrap();
    let err = download(tmp.path(), &options(&files, &[&server.base]), &mut ()).unwrap_err();
    let tried = attempts(&err, TRAIN_IMAGES);
    let url = format!("{}{TRAIN_IMAGES}.gz", server.base);
    assert!(
        matches!(&tried[..], [Error::Http { url: u, .. }] if *u == url),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn stalled_server_times_out() {
    let files = synthetic();
    let mut served = routes("", &files);
    served.insert(
        format!("/{TRAIN_IMAGES}.gz"),
        Reply::Stall(gzip(&files[0].1)),
    );
    let server = Server::start(served);
    let tmp = TempDir::new().unwrap();
    let mut opts = options(&files, &[&server.base]);
    opts.read_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = download(tmp.path(), &opts, &mut ()).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let tried = attempts(&err, TRAIN_IMAGES);
    assert!(matches!(&tried[..], [Error::Http { .. }]), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn first_mirror_fails_and_the_second_works() {
    let files = synthetic();
    // Mirror 1 refuses connections; mirror 2 answers 503; mirror 3 serves a corrupt archive
    // for the training images and 404 for the rest; mirror 4 works.
    let refused = dead_mirror();
    let busy: HashMap<String, Reply> = files
        .iter()
        .map(|(n, _)| (format!("/{n}.gz"), Reply::Status(503)))
        .collect();
    let busy = Server::start(busy);
    let mut broken = HashMap::new();
    broken.insert(
        format!("/{TRAIN_IMAGES}.gz"),
        Reply::Body(b"this is not gzip".to_vec()),
    );
    let broken = Server::start(broken);
    let good = Server::start(routes("", &files));
    let mirrors = [
        refused.clone(),
        busy.base.clone(),
        broken.base.clone(),
        good.base.clone(),
    ];

    let tmp = TempDir::new().unwrap();
    let mut rec = Recorder::default();
    let report = download(tmp.path(), &options(&files, &mirrors), &mut rec).unwrap();
    for ((name, raw), file) in files.iter().zip(&report.files) {
        assert!(
            matches!(&file.outcome, Outcome::Downloaded { url, .. } if url.starts_with(&good.base)),
            "{file:?}"
        );
        assert_eq!(&fs::read(tmp.path().join(name)).unwrap(), raw);
    }
    // Three failures per file, each naming what went wrong.
    assert_eq!(rec.failures.len(), 12, "{:#?}", rec.failures);
    let first = &rec.failures[..3];
    assert!(first[0].contains(&refused), "{first:?}");
    assert!(first[1].contains("HTTP 503"), "{first:?}");
    assert!(first[2].contains("decompress"), "{first:?}");
    assert!(rec.failures[5].contains("HTTP 404"), "{:?}", rec.failures);
    assert_eq!(listing(tmp.path()), complete_listing());
}

#[test]
fn every_mirror_failing_lists_every_attempt() {
    let files = synthetic();
    let mirrors = [dead_mirror(), dead_mirror()];
    let tmp = TempDir::new().unwrap();
    let mut rec = Recorder::default();
    let err = download(tmp.path(), &options(&files, &mirrors), &mut rec).unwrap_err();
    let tried = attempts(&err, TRAIN_IMAGES);
    assert_eq!(tried.len(), 2, "{err}");
    assert_eq!(rec.failures.len(), 2);
    assert!(
        rec.failures[0].ends_with("(retrying: true)"),
        "{:?}",
        rec.failures
    );
    assert!(
        rec.failures[1].ends_with("(retrying: false)"),
        "{:?}",
        rec.failures
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("could not download {TRAIN_IMAGES}.gz: (1) ")),
        "{message}"
    );
    for mirror in &mirrors {
        assert!(message.contains(mirror.as_str()), "{message}");
    }
    assert!(listing(tmp.path()).is_empty());
}

#[test]
fn archives_already_there_are_unpacked_without_the_network() {
    let files = synthetic();
    let tmp = TempDir::new().unwrap();
    for (name, raw) in &files {
        fs::write(tmp.path().join(format!("{name}.gz")), gzip(raw)).unwrap();
    }
    let report = download(tmp.path(), &options(&files, &[dead_mirror()]), &mut ()).unwrap();
    assert!(
        report
            .files
            .iter()
            .all(|f| f.outcome == Outcome::Decompressed)
    );
    assert_eq!(report.downloaded_bytes(), 0);
    for (name, raw) in &files {
        assert_eq!(&fs::read(tmp.path().join(name)).unwrap(), raw);
    }
}

#[test]
fn a_bad_archive_already_there_is_replaced_from_a_mirror() {
    let files = synthetic();
    let server = Server::start(routes("", &files));
    let tmp = TempDir::new().unwrap();
    fs::write(
        tmp.path().join(format!("{TRAIN_IMAGES}.gz")),
        gzip(b"not the file"),
    )
    .unwrap();
    let mut rec = Recorder::default();
    let report = download(tmp.path(), &options(&files, &[&server.base]), &mut rec).unwrap();
    assert!(matches!(
        report.files[0].outcome,
        Outcome::Downloaded { .. }
    ));
    assert_eq!(rec.failures.len(), 1, "{:?}", rec.failures);
    assert!(rec.failures[0].contains("SHA-256"), "{:?}", rec.failures);
    assert_eq!(
        fs::read(tmp.path().join(format!("{TRAIN_IMAGES}.gz"))).unwrap(),
        gzip(&files[0].1)
    );
}

#[test]
fn a_raw_file_that_does_not_match_is_left_alone() {
    let files = synthetic();
    let tmp = TempDir::new().unwrap();
    let mine = tmp.path().join(TRAIN_IMAGES);
    fs::write(&mine, b"my own file").unwrap();
    let err = download(tmp.path(), &options(&files, &[dead_mirror()]), &mut ()).unwrap_err();
    match &err {
        Error::DigestMismatch {
            file,
            origin,
            discarded,
            ..
        } => {
            assert_eq!(file, TRAIN_IMAGES);
            assert_eq!(origin, &mine.display().to_string());
            assert!(!discarded);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("left in place"), "{err}");
    assert_eq!(fs::read(&mine).unwrap(), b"my own file");
}

#[test]
fn a_local_write_failure_stops_at_once_and_leaves_nothing() {
    // The archive cannot be renamed into place: a directory holds its name. No other mirror
    // can fix that, so none is tried.
    let files = synthetic();
    let first = Server::start(routes("", &files));
    let second = Server::start(routes("", &files));
    let tmp = TempDir::new().unwrap();
    let blocker = tmp.path().join(format!("{TRAIN_IMAGES}.gz"));
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("keep"), b"x").unwrap();
    let err = download(
        tmp.path(),
        &options(&files, &[&first.base, &second.base]),
        &mut (),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if *path == blocker),
        "{err:?}"
    );
    assert_eq!(first.requests().len(), 1);
    assert!(second.requests().is_empty());
    assert_eq!(listing(tmp.path()), [format!("{TRAIN_IMAGES}.gz")]);
}

#[test]
fn bad_options_are_refused_before_any_request() {
    let files = synthetic();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("never");
    for mirror in ["ftp://127.0.0.1/", "127.0.0.1:80/", "https://"] {
        let err = download(&dir, &options(&files, &[mirror.to_string()]), &mut ()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadOption {
                    option: "mirror",
                    ..
                }
            ),
            "{mirror}: {err:?}"
        );
    }
    let mut opts = options(&files, &[dead_mirror()]);
    opts.files[2].sha256 = "xyz".to_string();
    let err = download(&dir, &opts, &mut ()).unwrap_err();
    assert!(err.to_string().contains(TEST_IMAGES), "{err}");
    assert!(!dir.exists());
}

// ---------------------------------------------------------------------------------------------
// Real MNIST.

/// `$MNIST_DIR`'s four files gzipped, made once per test process; `None` after a notice.
fn real_mnist(test: &str) -> Option<&'static [(&'static str, Vec<u8>)]> {
    let dir = common::mnist_dir(test)?;
    static GZIPPED: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    Some(GZIPPED.get_or_init(|| {
        NAMES
            .iter()
            .map(|name| {
                let raw = fs::read(dir.join(name))
                    .unwrap_or_else(|e| panic!("read {name} in MNIST_DIR: {e}"));
                (*name, gzip(&raw))
            })
            .collect()
    }))
}

fn real_routes(gzipped: &[(&str, Vec<u8>)]) -> HashMap<String, Reply> {
    gzipped
        .iter()
        .map(|(name, gz)| (format!("/mnist/{name}.gz"), Reply::Body(gz.clone())))
        .collect()
}

#[test]
fn real_mnist_from_a_local_mirror_matches_the_published_digests() {
    let Some(gzipped) = real_mnist("real_mnist_from_a_local_mirror_matches_the_published_digests")
    else {
        return;
    };
    let server = Server::start(real_routes(gzipped));
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("mnist");
    let mirror = format!("{}mnist/", server.base);
    let report = download(&dir, &DownloadOptions::with_mirrors([mirror]), &mut ()).unwrap();
    assert!(
        report
            .files
            .iter()
            .all(|f| matches!(f.outcome, Outcome::Downloaded { .. }))
    );
    for (name, digest) in MNIST_FILES {
        assert_eq!(sha256(&fs::read(dir.join(name)).unwrap()), digest, "{name}");
    }
    assert_eq!(listing(&dir), complete_listing());
    let mnist = Mnist::open(&dir, &MnistOptions::default()).unwrap();
    assert_eq!(
        (
            mnist.training().len(),
            mnist.validation().len(),
            mnist.test().len()
        ),
        (50_000, 10_000, 10_000)
    );
}

// ---------------------------------------------------------------------------------------------
// Directories holding only .gz files.

#[test]
fn gz_only_directory_is_decompressed_once_beside_the_archives() {
    let files = synthetic();
    let tmp = TempDir::new().unwrap();
    for (name, raw) in &files {
        fs::write(tmp.path().join(format!("{name}.gz")), gzip(raw)).unwrap();
    }
    let mnist = Mnist::open(tmp.path(), &small_split()).unwrap();
    assert_eq!(mnist.training().len(), 25);
    assert_eq!(
        mnist.training().images_path(),
        tmp.path().join(TRAIN_IMAGES)
    );
    assert_eq!(mnist.test().image(3), &files[2].1[16 + 3 * 16..16 + 4 * 16]);
    assert_eq!(listing(tmp.path()), complete_listing());
    for (name, raw) in &files {
        assert_eq!(&fs::read(tmp.path().join(name)).unwrap(), raw);
    }

    // Once decompressed, the raw files are used as they are.
    let stamp = fs::metadata(tmp.path().join(TRAIN_IMAGES))
        .unwrap()
        .modified()
        .unwrap();
    thread::sleep(Duration::from_millis(20));
    Mnist::open(tmp.path(), &small_split()).unwrap();
    let resolved = gz::resolve(tmp.path(), TRAIN_IMAGES, None).unwrap();
    assert_eq!(resolved, Some(Resolved::Raw(tmp.path().join(TRAIN_IMAGES))));
    assert_eq!(
        fs::metadata(tmp.path().join(TRAIN_IMAGES))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
}

#[test]
fn gz_only_read_only_directory_is_decompressed_into_the_cache() {
    use std::os::unix::fs::PermissionsExt;

    let files = synthetic();
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("ro");
    let cache = tmp.path().join("cache");
    fs::create_dir(&dir).unwrap();
    for (name, raw) in &files {
        fs::write(dir.join(format!("{name}.gz")), gzip(raw)).unwrap();
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    // Root's writes are not stopped by the mode, but a directory without write bits is left
    // alone all the same, so this runs the same way as root (CI) and as a user.
    let before = listing(&dir);

    let mut cached = Vec::new();
    for (name, raw) in &files {
        let resolved = gz::resolve(&dir, name, Some(&cache)).unwrap().unwrap();
        let Resolved::Cached(path) = &resolved else {
            panic!("{name}: expected the cache, got {resolved:?}");
        };
        assert!(path.starts_with(&cache), "{}", path.display());
        assert!(path.ends_with(name), "{}", path.display());
        assert_eq!(&fs::read(path).unwrap(), raw);
        cached.push(path.clone());
    }
    assert_eq!(listing(&dir), before, "the read-only directory was written");
    // Found in the cache the next time; a replaced archive gets a new cache entry.
    for ((name, _), path) in files.iter().zip(&cached) {
        let again = gz::resolve(&dir, name, Some(&cache)).unwrap();
        assert_eq!(again, Some(Resolved::Cached(path.clone())));
    }
    // With no cache directory at all, a read-only directory is an error that says so.
    let err = gz::resolve(&dir, TRAIN_IMAGES, None).unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");

    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn corrupt_or_truncated_gz_is_an_error_naming_the_file() {
    let files = synthetic();
    for (what, bytes) in [
        ("truncated", {
            let gz = gzip(&files[0].1);
            gz[..gz.len() / 2].to_vec()
        }),
        ("garbage", b"definitely not gzip".to_vec()),
        ("empty", Vec::new()),
    ] {
        let tmp = TempDir::new().unwrap();
        for (name, raw) in &files {
            fs::write(tmp.path().join(format!("{name}.gz")), gzip(raw)).unwrap();
        }
        let archive = tmp.path().join(format!("{TRAIN_IMAGES}.gz"));
        fs::write(&archive, &bytes).unwrap();
        let err = Mnist::open(tmp.path(), &small_split()).unwrap_err();
        match &err {
            Error::Io {
                path, operation, ..
            } => {
                assert_eq!(path, &archive, "{what}: {err}");
                assert_eq!(*operation, "decompress", "{what}: {err}");
            }
            other => panic!("{what}: {other:?}"),
        }
        assert!(!tmp.path().join(TRAIN_IMAGES).exists(), "{what}");
        assert!(
            listing(tmp.path()).iter().all(|n| !n.starts_with('.')),
            "{what}: {:?}",
            listing(tmp.path())
        );
    }
}

#[test]
fn missing_files_are_still_named() {
    let tmp = TempDir::new().unwrap();
    let err = Mnist::open(tmp.path(), &small_split()).unwrap_err();
    assert!(
        matches!(&err, Error::MissingData { file, .. } if file == TRAIN_IMAGES),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The train binary.

/// `train --download` and the binary's messages (it exists only with feature `cli`).
#[cfg(feature = "cli")]
mod cli {
    use std::path::PathBuf;
    use std::process::{Command, Output};

    use super::*;

    /// A command running the `train` binary (through `SIMDNET_TEST_RUNNER` when set, as in
    /// tests/train_cli.rs), in `cwd`, with no MNIST_DIR and a private cache directory.
    fn train(cwd: &Path, args: &[&str]) -> Output {
        let exe = env!("CARGO_BIN_EXE_train");
        let mut cmd = match std::env::var("SIMDNET_TEST_RUNNER") {
            Ok(runner) if !runner.trim().is_empty() => {
                let mut words = runner.split_whitespace();
                let mut cmd = Command::new(words.next().unwrap());
                cmd.args(words).arg(exe);
                cmd
            }
            _ => Command::new(exe),
        };
        cmd.args(args)
            .current_dir(cwd)
            .env_remove("MNIST_DIR")
            .env("SIMDNET_CACHE_DIR", cwd.join("cache"))
            .output()
            .expect("run the train binary")
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn assert_exit(out: &Output, code: i32, needles: &[&str], what: &str) {
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{what}\nstdout:\n{}\nstderr:\n{err}",
            text(&out.stdout)
        );
        assert!(!err.contains("panicked"), "{what}: {err}");
        for needle in needles {
            assert!(
                err.contains(needle),
                "{what}: stderr lacks {needle:?}:\n{err}"
            );
        }
    }

    #[test]
    fn cli_missing_data_directory_names_the_download_command() {
        let tmp = TempDir::new().unwrap();
        let out = train(tmp.path(), &["--epochs", "1"]);
        assert_exit(
            &out,
            1,
            &[
                "error: data directory data/mnist does not exist",
                "train --download",
                "cargo run --release --bin train -- --download",
            ],
            "default directory",
        );
        let out = train(tmp.path(), &["--data", "elsewhere", "--epochs", "1"]);
        assert_exit(
            &out,
            1,
            &["elsewhere", "train --download --data elsewhere"],
            "--data",
        );
    }

    #[test]
    fn cli_mirror_needs_download_and_a_url() {
        let tmp = TempDir::new().unwrap();
        let out = train(tmp.path(), &["--mirror", "http://127.0.0.1:1/"]);
        assert_exit(&out, 2, &["--download"], "--mirror alone");
        let out = train(tmp.path(), &["--download", "--mirror", "ftp://example/"]);
        assert_exit(
            &out,
            2,
            &["error: invalid mirror", "ftp://example/"],
            "ftp mirror",
        );
        assert!(!tmp.path().join("data").exists());
    }

    #[test]
    fn cli_download_of_data_that_is_not_mnist_fails_and_leaves_nothing() {
        let files = synthetic();
        let server = Server::start(routes("", &files));
        let tmp = TempDir::new().unwrap();
        let out = train(
            tmp.path(),
            &["--download", "--mirror", &server.base, "--data", "d"],
        );
        assert_exit(
            &out,
            1,
            &[
                "error: could not download train-images-idx3-ubyte.gz",
                &format!("{}{TRAIN_IMAGES}.gz", server.base),
                MNIST_FILES[0].1,
                &sha256(&files[0].1),
            ],
            "synthetic data under MNIST's digests",
        );
        assert!(listing(&tmp.path().join("d")).is_empty());
    }

    #[test]
    fn cli_download_then_train_on_real_mnist() {
        let Some(gzipped) = real_mnist("cli_download_then_train_on_real_mnist") else {
            return;
        };
        let server = Server::start(real_routes(gzipped));
        let tmp = TempDir::new().unwrap();
        let mirror = format!("{}mnist/", server.base);
        // Training on 100 images and no evaluation: this is about the data, not the training.
        let args = [
            "--download",
            "--mirror",
            mirror.as_str(),
            "--epochs",
            "1",
            "--validation-size",
            "59900",
            "--monitor",
            "none",
        ];
        let out = train(tmp.path(), &args);
        assert_exit(&out, 0, &[], "download and train");
        let stdout = text(&out.stdout);
        assert!(stdout.contains("SHA-256 verified"), "{stdout}");
        assert!(stdout.contains("Trained 1 epoch"), "{stdout}");
        let dir = tmp.path().join("data").join("mnist");
        assert_eq!(listing(&dir), complete_listing());

        // Again: everything is there, nothing is fetched.
        let before = server.requests().len();
        let out = train(tmp.path(), &args);
        assert_exit(&out, 0, &[], "second run");
        assert_eq!(server.requests().len(), before);
    }

    #[test]
    fn cli_trains_from_a_read_only_gz_only_directory() {
        use std::os::unix::fs::PermissionsExt;

        let files = synthetic();
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("gz");
        fs::create_dir(&dir).unwrap();
        for (name, raw) in &files {
            fs::write(dir.join(format!("{name}.gz")), gzip(raw)).unwrap();
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
        let args = [
            "--data",
            "gz",
            "--sizes",
            "16,8,4",
            "--epochs",
            "2",
            "--validation-size",
            "5",
            "--mini-batch-size",
            "5",
        ];
        let out = train(tmp.path(), &args);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_exit(&out, 0, &[], "read-only .gz directory");
        assert!(text(&out.stdout).contains("Trained all 2 epochs"));
        assert_eq!(listing(&dir).len(), 4, "{:?}", listing(&dir));
        let cached: Vec<PathBuf> = fs::read_dir(tmp.path().join("cache").join("mnist"))
            .unwrap()
            .flat_map(|key| fs::read_dir(key.unwrap().path()).unwrap())
            .map(|f| f.unwrap().path())
            .collect();
        assert_eq!(cached.len(), 4, "{cached:?}");
    }
}
