//! A minimal AWS Lambda Runtime API on 127.0.0.1, for end-to-end tests and
//! the cold-start benchmark: hand-written HTTP/1.1 over `std::net`, one
//! thread per connection, no dependencies.
//!
//! - `GET /2018-06-01/runtime/invocation/next` long-polls until
//!   [`RuntimeApi::invoke`] queues an event, then answers it with the
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`,
//!   `-Invoked-Function-Arn` and `-Trace-Id` headers;
//! - `POST .../invocation/{id}/response` and `.../{id}/error` are collected
//!   and handed back by `invoke`;
//! - `POST /2018-06-01/runtime/init/error` is collected
//!   ([`RuntimeApi::wait_init_error`]).
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `POST .../response`: the body.
    Response(Vec<u8>),
    /// `POST .../error`: the `Lambda-Runtime-Function-Error-Type` header and the body.
    Error {
        /// The error-type header, when sent.
        error_type_header: Option<String>,
        /// The body (`{"errorType", "errorMessage"}`).
        body: Vec<u8>,
    },
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        let body = match self {
            Answer::Response(body) | Answer::Error { body, .. } => body,
        };
        serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "the function answered with non-JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        })
    }

    /// Whether this is an error answer.
    pub fn is_error(&self) -> bool {
        matches!(self, Answer::Error { .. })
    }
}

/// An `/init/error` post.
#[derive(Debug, Clone)]
pub struct InitError {
    /// The `Lambda-Runtime-Function-Error-Type` header.
    pub error_type_header: Option<String>,
    /// The body as JSON.
    pub body: serde_json::Value,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Vec<u8>)>,
    answers: HashMap<String, Answer>,
    init_error: Option<InitError>,
    polls: usize,
    first_poll: Option<Instant>,
    first_answer: Option<Instant>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A Runtime API server on an ephemeral port of 127.0.0.1.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    next_id: Mutex<u64>,
}

impl RuntimeApi {
    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let accept_shared = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if accept_shared.lock().shutdown {
                    break;
                }
                let conn_shared = Arc::clone(&accept_shared);
                thread::spawn(move || serve_connection(stream, &conn_shared));
            }
        });
        RuntimeApi {
            addr,
            shared,
            next_id: Mutex::new(0),
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event` and waits up to `timeout` for the function's answer.
    pub fn invoke(&self, event: &[u8], timeout: Duration) -> Option<Answer> {
        let id = self.enqueue(event);
        self.wait_answer(&id, timeout)
    }

    /// Queues `event` for the next `/next` poll; returns its request id.
    pub fn enqueue(&self, event: &[u8]) -> String {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            format!("req-{:08}", *next)
        };
        let mut state = self.shared.lock();
        state.queue.push_back((id.clone(), event.to_vec()));
        self.shared.changed.notify_all();
        id
    }

    /// Waits up to `timeout` for the answer to request `id`; on timeout the
    /// event is withdrawn if nobody took it.
    pub fn wait_answer(&self, id: &str, timeout: Duration) -> Option<Answer> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if let Some(answer) = state.answers.remove(id) {
                return Some(answer);
            }
            let now = Instant::now();
            if now >= deadline {
                state.queue.retain(|(queued, _)| queued != id);
                return None;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits up to `timeout` for the first `/next` poll; returns when it came.
    pub fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        self.wait_for(timeout, |s| s.first_poll)
    }

    /// When the first `/response` or `/error` arrived.
    pub fn first_answer(&self) -> Option<Instant> {
        self.shared.lock().first_answer
    }

    /// Waits up to `timeout` for an `/init/error` post.
    pub fn wait_init_error(&self, timeout: Duration) -> Option<InitError> {
        self.wait_for(timeout, |s| s.init_error.clone())
    }

    /// How many `/next` polls have arrived.
    pub fn polls(&self) -> usize {
        self.shared.lock().polls
    }

    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut get: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if let Some(value) = get(&state) {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    while let Some(request) = read_request(&mut reader) {
        let keep_going = handle(&request, &mut writer, shared);
        if !keep_going || request.header("connection") == Some("close") {
            break;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = request.header("content-length") {
        let len: usize = len.parse().ok()?;
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        request.body = body;
    } else if request
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        request.body = read_chunked(reader)?;
    }
    Some(request)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line).ok()?;
        let size_hex = size_line.trim().split(';').next()?;
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut trailer = String::new();
                reader.read_line(&mut trailer).ok()?;
                if trailer.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

fn respond(writer: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> bool {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes()).is_ok()
        && writer.write_all(body).is_ok()
        && writer.flush().is_ok()
}

const PREFIX: &str = "/2018-06-01/runtime/";

fn handle(request: &Request, writer: &mut TcpStream, shared: &Shared) -> bool {
    let Some(route) = request.path.strip_prefix(PREFIX) else {
        return respond(writer, "404 Not Found", &[], b"{}");
    };
    match (request.method.as_str(), route) {
        ("GET", "invocation/next") => {
            let (id, event) = {
                let mut state = shared.lock();
                state.polls += 1;
                if state.first_poll.is_none() {
                    state.first_poll = Some(Instant::now());
                }
                shared.changed.notify_all();
                loop {
                    if state.shutdown {
                        return false;
                    }
                    if let Some(next) = state.queue.pop_front() {
                        break next;
                    }
                    state = shared
                        .changed
                        .wait_timeout(state, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                + 60_000;
            respond(
                writer,
                "200 OK",
                &[
                    ("content-type", "application/json".to_owned()),
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:apr-e2e".to_owned(),
                    ),
                    (
                        "lambda-runtime-trace-id",
                        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
                            .to_owned(),
                    ),
                ],
                &event,
            )
        }
        ("POST", "init/error") => {
            let body = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
            let mut state = shared.lock();
            state.init_error = Some(InitError {
                error_type_header: request
                    .header("lambda-runtime-function-error-type")
                    .map(str::to_owned),
                body,
            });
            shared.changed.notify_all();
            drop(state);
            respond(writer, "202 Accepted", &[], br#"{"status":"OK"}"#)
        }
        ("POST", invocation) => {
            let Some(rest) = invocation.strip_prefix("invocation/") else {
                return respond(writer, "404 Not Found", &[], b"{}");
            };
            let answer = if let Some(id) = rest.strip_suffix("/response") {
                Some((id, Answer::Response(request.body.clone())))
            } else {
                rest.strip_suffix("/error").map(|id| {
                    (
                        id,
                        Answer::Error {
                            error_type_header: request
                                .header("lambda-runtime-function-error-type")
                                .map(str::to_owned),
                            body: request.body.clone(),
                        },
                    )
                })
            };
            let Some((id, answer)) = answer else {
                return respond(writer, "404 Not Found", &[], b"{}");
            };
            let mut state = shared.lock();
            if state.first_answer.is_none() {
                state.first_answer = Some(Instant::now());
            }
            state.answers.insert(id.to_owned(), answer);
            shared.changed.notify_all();
            drop(state);
            respond(writer, "202 Accepted", &[], br#"{"status":"OK"}"#)
        }
        _ => respond(writer, "404 Not Found", &[], b"{}"),
    }
}
