//! A minimal AWS Lambda Runtime API on 127.0.0.1, for end-to-end tests and
//! the cold-start benchmark: hand-written HTTP/1.1 over `std::net`, one
//! thread per connection, no dependencies.
//!
//! - `GET /2018-06-01/runtime/invocation/next` long-polls until
//!   [`RuntimeApi::invoke`] queues an event, then answers it with the
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`,
//!   `-Invoked-Function-Arn` and `-Trace-Id` headers (and `-Aws-Tenant-Id`
//!   when asked). Any number of polls may wait at once (Lambda Managed
//!   Instances); each queued event goes to exactly one of them, never to a
//!   poll whose connection was closed;
//! - `POST .../invocation/{id}/response` and `.../{id}/error` are collected,
//!   matched by request id, and handed back by `invoke`;
//! - `POST /2018-06-01/runtime/init/error` is collected
//!   ([`RuntimeApi::wait_init_error`]).
//!
//! A [`Delivery`] injects Runtime API faults into one event (headers left
//! out or malformed, a bare error status instead of the event) or delays
//! the acknowledgement of its answer. Counters tell how many polls wait at
//! once and how often each event was delivered and answered.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
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

/// How one queued event is handed out by `/next`, and how its answer is
/// acknowledged: the default is what Lambda does.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// Headers left out of the `/next` answer (lowercase names, e.g.
    /// `lambda-runtime-aws-request-id`).
    pub omit: Vec<String>,
    /// Headers added to the `/next` answer, or replacing the usual value.
    pub set: Vec<(String, String)>,
    /// Answer the poll with this status code, the body `{"errorMessage":…}`
    /// and no Lambda header at all, instead of the event.
    pub bare_status: Option<u16>,
    /// Wait this long before acknowledging (`202`) the function's answer.
    pub ack_delay: Duration,
    /// Acknowledge the answer only once [`RuntimeApi::release`] is called.
    pub hold_ack: bool,
}

impl Delivery {
    /// Leaves header `name` out.
    pub fn omit(mut self, name: &str) -> Self {
        self.omit.push(name.to_ascii_lowercase());
        self
    }

    /// Sends header `name` with `value`.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.set.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sends `Lambda-Runtime-Aws-Tenant-Id: tenant` (tenant isolation mode).
    pub fn tenant(self, tenant: &str) -> Self {
        self.header("lambda-runtime-aws-tenant-id", tenant)
    }

    /// Answers the poll with `status` and no Lambda header.
    pub fn bare_status(mut self, status: u16) -> Self {
        self.bare_status = Some(status);
        self
    }

    /// Acknowledges the answer only after `delay`.
    pub fn ack_delay(mut self, delay: Duration) -> Self {
        self.ack_delay = delay;
        self
    }

    /// Acknowledges the answer only once [`RuntimeApi::release`] is called
    /// (the function's invocation stays in flight until then).
    pub fn hold_ack(mut self) -> Self {
        self.hold_ack = true;
        self
    }
}

/// The X-Ray trace header every event carries.
pub const TRACE_ID: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

struct Queued {
    id: String,
    event: Vec<u8>,
    delivery: Delivery,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    answers: HashMap<String, Answer>,
    init_error: Option<InitError>,
    polls: usize,
    /// Polls waiting for an event right now, and the most at once.
    waiting: usize,
    max_waiting: usize,
    /// How many times each request id was handed out, and answered.
    delivered: HashMap<String, usize>,
    answered: HashMap<String, usize>,
    /// Answers to hold before acknowledging, and the acknowledged ones.
    ack_delays: HashMap<String, Duration>,
    held: HashSet<String>,
    acked: HashSet<String>,
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
        self.enqueue_with(event, Delivery::default())
    }

    /// Queues `event`, delivered as `delivery` says; returns its request id.
    pub fn enqueue_with(&self, event: &[u8], delivery: Delivery) -> String {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            format!("req-{:08}", *next)
        };
        let mut state = self.shared.lock();
        state.queue.push_back(Queued {
            id: id.clone(),
            event: event.to_vec(),
            delivery,
        });
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
                state.queue.retain(|queued| queued.id != id);
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

    /// Like [`wait_answer`](Self::wait_answer), but on timeout the event
    /// stays queued (to wait again).
    pub fn wait_answer_kept(&self, id: &str, timeout: Duration) -> Option<Answer> {
        self.wait_for_mut(timeout, |s| s.answers.remove(id))
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

    /// How many `/next` polls wait for an event right now.
    pub fn waiting_polls(&self) -> usize {
        self.shared.lock().waiting
    }

    /// The most `/next` polls that waited at once.
    pub fn max_waiting_polls(&self) -> usize {
        self.shared.lock().max_waiting
    }

    /// Waits up to `timeout` until at least `n` polls wait at once.
    pub fn wait_waiting_polls(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| (s.waiting >= n).then_some(()))
            .is_some()
    }

    /// How many times request `id` was handed to a poll.
    pub fn delivered(&self, id: &str) -> usize {
        self.shared.lock().delivered.get(id).copied().unwrap_or(0)
    }

    /// How many answers (`/response` or `/error`) request `id` received.
    pub fn answered(&self, id: &str) -> usize {
        self.shared.lock().answered.get(id).copied().unwrap_or(0)
    }

    /// Request ids delivered or answered other than exactly once, and
    /// answers to ids never delivered, as `(id, delivered, answered)`.
    pub fn irregular(&self) -> Vec<(String, usize, usize)> {
        let state = self.shared.lock();
        let ids: HashSet<&String> = state
            .delivered
            .keys()
            .chain(state.answered.keys())
            .collect();
        let mut odd: Vec<(String, usize, usize)> = ids
            .into_iter()
            .map(|id| {
                (
                    id.clone(),
                    state.delivered.get(id).copied().unwrap_or(0),
                    state.answered.get(id).copied().unwrap_or(0),
                )
            })
            .filter(|&(_, d, a)| d != 1 || a != 1)
            .collect();
        odd.sort();
        odd
    }

    /// Lets the acknowledgement of request `id`'s answer go
    /// ([`Delivery::hold_ack`]).
    pub fn release(&self, id: &str) {
        self.shared.lock().held.remove(id);
        self.shared.changed.notify_all();
    }

    /// Whether the answer to request `id` has been acknowledged (the `202`
    /// is being written, or was).
    pub fn acked(&self, id: &str) -> bool {
        self.shared.lock().acked.contains(id)
    }

    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut get: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        self.wait_for_mut(timeout, |s| get(s))
    }

    fn wait_for_mut<T>(
        &self,
        timeout: Duration,
        mut get: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if let Some(value) = get(&mut state) {
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

/// Whether the client closed the connection (a long poll it gave up on).
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

const PREFIX: &str = "/2018-06-01/runtime/";

fn handle(request: &Request, writer: &mut TcpStream, shared: &Shared) -> bool {
    let Some(route) = request.path.strip_prefix(PREFIX) else {
        return respond(writer, "404 Not Found", &[], b"{}");
    };
    match (request.method.as_str(), route) {
        ("GET", "invocation/next") => {
            let next = {
                let mut state = shared.lock();
                state.polls += 1;
                if state.first_poll.is_none() {
                    state.first_poll = Some(Instant::now());
                }
                state.waiting += 1;
                state.max_waiting = state.max_waiting.max(state.waiting);
                shared.changed.notify_all();
                let next = loop {
                    if state.shutdown {
                        break None;
                    }
                    // Never hand an event to a poll nobody waits for.
                    if !state.queue.is_empty() && peer_closed(writer) {
                        break None;
                    }
                    if let Some(next) = state.queue.pop_front() {
                        *state.delivered.entry(next.id.clone()).or_insert(0) += 1;
                        if next.delivery.hold_ack {
                            state.held.insert(next.id.clone());
                        }
                        if !next.delivery.ack_delay.is_zero() {
                            state
                                .ack_delays
                                .insert(next.id.clone(), next.delivery.ack_delay);
                        }
                        break Some(next);
                    }
                    state = shared
                        .changed
                        .wait_timeout(state, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    if state.queue.is_empty() && peer_closed(writer) {
                        break None;
                    }
                };
                state.waiting -= 1;
                shared.changed.notify_all();
                next
            };
            let Some(Queued {
                id,
                event,
                delivery,
            }) = next
            else {
                return false;
            };
            if let Some(status) = delivery.bare_status {
                return respond(
                    writer,
                    &format!("{status} Injected Fault"),
                    &[],
                    br#"{"errorMessage":"injected fault"}"#,
                );
            }
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                + 60_000;
            let mut headers: Vec<(String, String)> = vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("lambda-runtime-aws-request-id".to_owned(), id),
                (
                    "lambda-runtime-deadline-ms".to_owned(),
                    deadline.to_string(),
                ),
                (
                    "lambda-runtime-invoked-function-arn".to_owned(),
                    "arn:aws:lambda:us-east-1:123456789012:function:apr-e2e".to_owned(),
                ),
                ("lambda-runtime-trace-id".to_owned(), TRACE_ID.to_owned()),
            ];
            headers.retain(|(name, _)| !delivery.omit.contains(name));
            for (name, value) in delivery.set {
                headers.retain(|(n, _)| *n != name);
                headers.push((name, value));
            }
            let headers: Vec<(&str, String)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.clone()))
                .collect();
            respond(writer, "200 OK", &headers, &event)
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
            *state.answered.entry(id.to_owned()).or_insert(0) += 1;
            let delay = state.ack_delays.remove(id);
            shared.changed.notify_all();
            drop(state);
            if let Some(delay) = delay {
                thread::sleep(delay);
            }
            let mut state = shared.lock();
            while state.held.contains(id) && !state.shutdown {
                state = shared
                    .changed
                    .wait_timeout(state, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.acked.insert(id.to_owned());
            shared.changed.notify_all();
            drop(state);
            respond(writer, "202 Accepted", &[], br#"{"status":"OK"}"#)
        }
        _ => respond(writer, "404 Not Found", &[], b"{}"),
    }
}
