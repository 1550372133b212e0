//! A TCP proxy on loopback in front of the test PostgreSQL server, whose behaviour a test
//! switches at run time, to show what the store does when the network misbehaves:
//!
//! - [`Fault::Pass`]: every byte passes (the default);
//! - [`Fault::DropReply`]: the next request on a connection open at the time of arming (the
//!   first such connection the client writes to) gets `after` more replies, then everything
//!   the server sends on it is discarded while what the client sends still reaches the server,
//!   so "the write reached the server and committed, the reply was lost"; the connection can
//!   then be closed or reset after a delay ([`Then`]); the other connections pass, or are silent;
//! - [`Fault::SilentExisting`] / [`Fault::SilentAll`]: accept and discard in both directions,
//!   sockets kept open (a half-open network), for the connections open now, or for every one;
//! - [`Proxy::reset_all`]: every open connection closed with a reset (RST, SO_LINGER 0);
//! - [`Proxy::set_delay`]: each chunk held for a while, both ways, on every connection.
//!
//! A reply is counted by the server's ReadyForQuery messages (`Z`: type byte, int32 length),
//! which end every answer of the PostgreSQL protocol. A connection that lost bytes can never
//! carry the protocol again: when the proxy goes back to [`Fault::Pass`] such connections are
//! reset, as a peer answers a stale connection after a network comes back.
//!
//! Plain std threads: two per connection, each reading with a short timeout to notice a reset.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the proxy does to the connections (see the module's docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Every byte passes.
    Pass,
    /// The next request on a connection open at arming gets `after` more replies; then what
    /// the server sends on that connection is discarded (and `then` happens); `others` says
    /// what happens to every other connection, existing or new.
    DropReply {
        after: u32,
        then: Then,
        others: Others,
    },
    /// The connections open now go silent (both ways, sockets open); new ones pass.
    SilentExisting,
    /// Every connection, open now or new, is silent.
    SilentAll,
}

/// What happens to a connection whose replies are being dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// It stays open, silent towards the client.
    KeepOpen,
    /// After the delay, its client side is closed (end of stream).
    Close(Duration),
    /// After the delay, it is reset (RST).
    Reset(Duration),
}

/// What happens to the connections a [`Fault::DropReply`] does not target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Others {
    /// They pass (a fresh connection reaches the server).
    Pass,
    /// They are silent (nothing can reach the server).
    Silent,
}

const OPEN: u8 = 0;
/// Discards both ways.
const SILENT: u8 = 1;
/// Forwards the client's bytes, discards the server's.
const DROPPING: u8 = 2;

struct Conn {
    /// The fault epoch when it was accepted: it is "existing" for every later fault.
    opened_epoch: u64,
    state: AtomicU8,
    dead: AtomicBool,
    client: TcpStream,
    server: TcpStream,
}

impl Conn {
    fn kill(&self, reset: bool) {
        if self.dead.swap(true, Ordering::SeqCst) {
            return;
        }
        if reset {
            set_linger_zero(&self.client);
            set_linger_zero(&self.server);
            // Wakes the pumps without sending a FIN; the last close then sends the RST.
            let _ = self.client.shutdown(Shutdown::Read);
            let _ = self.server.shutdown(Shutdown::Read);
        } else {
            let _ = self.client.shutdown(Shutdown::Both);
            let _ = self.server.shutdown(Shutdown::Both);
        }
    }
}

struct State {
    epoch: u64,
    fault: Fault,
    delay: Duration,
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    /// The connection a `DropReply` targets, once the client wrote to one, and the replies it
    /// was given since.
    target: Option<u64>,
    target_replies: u32,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    stop: AtomicBool,
    replies: AtomicU64,
    dropped_bytes: AtomicU64,
    discarded_requests: AtomicU64,
    accepted: AtomicU64,
    /// Dropped bytes when the fault was last set.
    dropped_at_set: AtomicU64,
    started: Instant,
    /// Milliseconds since `started` of the last byte or connection seen.
    last_activity_ms: AtomicU64,
}

impl Shared {
    fn active(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_activity_ms.store(now, Ordering::SeqCst);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The proxy; stopped (every connection reset) when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy on 127.0.0.1 and a free port in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listens");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                epoch: 0,
                fault: Fault::Pass,
                delay: Duration::ZERO,
                next_id: 0,
                conns: HashMap::new(),
                target: None,
                target_replies: 0,
            }),
            stop: AtomicBool::new(false),
            replies: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
            discarded_requests: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            dropped_at_set: AtomicU64::new(0),
            started: Instant::now(),
            last_activity_ms: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || accept_loop(listener, accepting))
            .unwrap();
        Proxy { addr, shared }
    }

    /// A proxy in front of the server of a `postgresql://user@host:port/db` URL, and that URL
    /// rewritten to go through the proxy.
    pub fn in_front_of(url: &str) -> (Proxy, String) {
        let (head, rest) = url.split_once('@').expect("URL with user@host");
        let (host_port, tail) = rest.split_once('/').expect("URL with a database");
        let upstream: SocketAddr = host_port.parse().expect("host:port of the test server");
        let proxy = Proxy::start(upstream);
        let through = format!("{head}@{}/{tail}", proxy.addr);
        (proxy, through)
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the fault. Going back to [`Fault::Pass`] resets the connections that lost
    /// bytes; [`Fault::SilentExisting`] and [`Fault::SilentAll`] silence the open ones now.
    pub fn set(&self, fault: Fault) {
        let mut state = self.shared.lock();
        self.shared
            .dropped_at_set
            .store(self.dropped_bytes(), Ordering::SeqCst);
        state.epoch += 1;
        state.fault = fault;
        state.target = None;
        state.target_replies = 0;
        match fault {
            Fault::Pass => {
                state.conns.retain(|_, conn| {
                    let broken = conn.state.load(Ordering::SeqCst) != OPEN;
                    if broken {
                        conn.kill(true);
                    }
                    !broken
                });
            }
            Fault::SilentExisting | Fault::SilentAll => {
                for conn in state.conns.values() {
                    conn.state.store(SILENT, Ordering::SeqCst);
                }
            }
            Fault::DropReply { .. } => {}
        }
    }

    /// Every byte passes (connections that lost bytes are reset).
    pub fn pass(&self) {
        self.set(Fault::Pass);
    }

    /// Sets `fault` once no byte passed for [`QUIET`], so that "the next request" is the
    /// caller's and not a pool's background work.
    pub fn arm_quietly(&self, fault: Fault) {
        self.wait_quiet(QUIET);
        self.set(fault);
    }

    /// Arms [`Fault::DropReply`], the other connections passing.
    pub fn drop_reply(&self, after: u32, then: Then) {
        self.set(Fault::DropReply {
            after,
            then,
            others: Others::Pass,
        });
    }

    /// Holds each chunk for `delay` before passing it on, both ways (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Resets every open connection (RST).
    pub fn reset_all(&self) {
        let mut state = self.shared.lock();
        for conn in state.conns.values() {
            conn.kill(true);
        }
        state.conns.clear();
    }

    /// Runs `f` and counts the replies given on the first connection open before it that it
    /// writes to (what [`Fault::DropReply`]'s `after` counts); nothing is dropped. `None` when
    /// `f` wrote to no existing connection.
    pub fn replies_during<T>(&self, f: impl FnOnce() -> T) -> (T, Option<u32>) {
        self.wait_quiet(QUIET);
        self.drop_reply(u32::MAX, Then::KeepOpen);
        let value = f();
        let counted = {
            let state = self.shared.lock();
            state.target.map(|_| state.target_replies)
        };
        self.pass();
        (value, counted)
    }

    /// Whether anything was dropped since the fault was last set.
    pub fn dropped(&self) -> bool {
        self.dropped_bytes() > self.shared.dropped_at_set.load(Ordering::SeqCst)
    }

    /// Waits until no byte has passed for `quiet` (a pool's background work done), at most
    /// five seconds.
    pub fn wait_quiet(&self, quiet: Duration) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let last = self.shared.last_activity_ms.load(Ordering::SeqCst);
            let now = self.shared.started.elapsed().as_millis() as u64;
            if now.saturating_sub(last) >= quiet.as_millis() as u64 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Bytes from the server discarded so far (all faults).
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.dropped_bytes.load(Ordering::SeqCst)
    }

    /// Chunks from clients discarded so far (silent connections).
    pub fn discarded_requests(&self) -> u64 {
        self.shared.discarded_requests.load(Ordering::SeqCst)
    }

    /// ReadyForQuery messages passed to clients so far.
    pub fn replies(&self) -> u64 {
        self.shared.replies.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().conns.len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.reset_all();
        // Wakes the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

const POLL: Duration = Duration::from_millis(50);
/// How long without traffic counts as quiet before arming a fault that targets "the next
/// request" (see [`Proxy::arm_quietly`]).
pub const QUIET: Duration = Duration::from_millis(150);

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let Ok(server) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2))
        else {
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        shared.active();
        for stream in [&client, &server] {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(POLL));
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let (id, conn) = {
            let mut state = shared.lock();
            let silent = match state.fault {
                Fault::SilentAll => true,
                Fault::DropReply { others, .. } => others == Others::Silent,
                _ => false,
            };
            let conn = Arc::new(Conn {
                opened_epoch: state.epoch,
                state: AtomicU8::new(if silent { SILENT } else { OPEN }),
                dead: AtomicBool::new(false),
                client: client.try_clone().unwrap(),
                server: server.try_clone().unwrap(),
            });
            let id = state.next_id;
            state.next_id += 1;
            state.conns.insert(id, Arc::clone(&conn));
            (id, conn)
        };
        let (up, down) = (Arc::clone(&shared), Arc::clone(&shared));
        let (up_conn, down_conn) = (Arc::clone(&conn), conn);
        let (c1, s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || client_to_server(&up, id, &up_conn, c1, s1));
        std::thread::spawn(move || server_to_client(&down, id, &down_conn, server, client));
    }
}

/// Reads into `buf`: `Some(0)` at the end, `None` after a read timeout.
fn read_some(from: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    match from.read(buf) {
        Ok(n) => Some(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) if e.kind() == ErrorKind::Interrupted => None,
        Err(_) => Some(0),
    }
}

fn finish(shared: &Shared, id: u64, conn: &Conn) {
    conn.kill(false);
    shared.lock().conns.remove(&id);
}

fn client_to_server(
    shared: &Shared,
    id: u64,
    conn: &Conn,
    mut client: TcpStream,
    mut server: TcpStream,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if conn.dead.load(Ordering::SeqCst) {
            return;
        }
        let n = match read_some(&mut client, &mut buf) {
            None => continue,
            // Woken by a reset: the last close sends it.
            Some(0) if conn.dead.load(Ordering::SeqCst) => return,
            Some(0) => {
                if conn.state.load(Ordering::SeqCst) == OPEN {
                    // Passes the end of stream on; the server closes its side in turn.
                    let _ = server.shutdown(Shutdown::Write);
                } else {
                    finish(shared, id, conn);
                }
                return;
            }
            Some(n) => n,
        };
        shared.active();
        let delay = {
            let mut state = shared.lock();
            if let Fault::DropReply { others, .. } = state.fault {
                let existing = conn.opened_epoch < state.epoch;
                match state.target {
                    None if existing && conn.state.load(Ordering::SeqCst) == OPEN => {
                        state.target = Some(id);
                        state.target_replies = 0;
                    }
                    Some(target) if target == id => {}
                    _ if others == Others::Silent => conn.state.store(SILENT, Ordering::SeqCst),
                    _ => {}
                }
            }
            state.delay
        };
        if conn.state.load(Ordering::SeqCst) == SILENT {
            shared.discarded_requests.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if server.write_all(&buf[..n]).is_err() {
            finish(shared, id, conn);
            return;
        }
    }
}

fn server_to_client(
    shared: &Arc<Shared>,
    id: u64,
    conn: &Conn,
    mut server: TcpStream,
    mut client: TcpStream,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut parser = Backend::default();
    let mut ends = Vec::new();
    loop {
        if conn.dead.load(Ordering::SeqCst) {
            return;
        }
        let n = match read_some(&mut server, &mut buf) {
            None => continue,
            Some(0) if conn.dead.load(Ordering::SeqCst) => return,
            Some(0) => {
                if conn.state.load(Ordering::SeqCst) == OPEN {
                    let _ = client.shutdown(Shutdown::Write);
                }
                finish(shared, id, conn);
                return;
            }
            Some(n) => n,
        };
        shared.active();
        ends.clear();
        parser.feed(&buf[..n], &mut ends);
        // Splits the chunk at the end of each ReadyForQuery, deciding each piece's fate.
        let mut pieces: Vec<(usize, usize, bool)> = Vec::new();
        let mut start = 0;
        for &end in &ends {
            pieces.push((start, end, true));
            start = end;
        }
        if start < n {
            pieces.push((start, n, false));
        }
        let (mut pass_to, mut started_dropping) = (0, None);
        let delay = {
            let mut state = shared.lock();
            for &(from, to, ends_reply) in &pieces {
                if let (Fault::DropReply { after, then, .. }, Some(target)) =
                    (state.fault, state.target)
                    && target == id
                    && conn.state.load(Ordering::SeqCst) == OPEN
                    && state.target_replies >= after
                {
                    conn.state.store(DROPPING, Ordering::SeqCst);
                    started_dropping = Some(then);
                }
                if conn.state.load(Ordering::SeqCst) != OPEN {
                    shared
                        .dropped_bytes
                        .fetch_add((to - from) as u64, Ordering::SeqCst);
                    continue;
                }
                debug_assert_eq!(from, pass_to, "bytes pass in order, up to the first drop");
                pass_to = to;
                if ends_reply {
                    shared.replies.fetch_add(1, Ordering::SeqCst);
                    if state.target == Some(id) {
                        state.target_replies = state.target_replies.saturating_add(1);
                    }
                }
            }
            state.delay
        };
        if pass_to > 0 {
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            if client.write_all(&buf[..pass_to]).is_err() {
                finish(shared, id, conn);
                return;
            }
        }
        if let Some(then) = started_dropping {
            let (wait, reset) = match then {
                Then::KeepOpen => continue,
                Then::Close(wait) => (wait, false),
                Then::Reset(wait) => (wait, true),
            };
            let shared = Arc::clone(shared);
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                let victim = shared.lock().conns.remove(&id);
                if let Some(victim) = victim {
                    victim.kill(reset);
                }
            });
        }
    }
}

/// Finds the ends of ReadyForQuery messages in the server's byte stream.
#[derive(Default)]
struct Backend {
    /// Whether the first authentication message was seen (before it, a lone `N`, `S` or `G`
    /// answers an SSL or GSS encryption request).
    started: bool,
    header: [u8; 5],
    have: usize,
    /// Bytes of the current message's body still to come.
    left: usize,
}

impl Backend {
    fn feed(&mut self, data: &[u8], ends: &mut Vec<usize>) {
        let mut at = 0;
        while at < data.len() {
            if self.left > 0 {
                let take = self.left.min(data.len() - at);
                self.left -= take;
                at += take;
                if self.left == 0 && self.header[0] == b'Z' {
                    ends.push(at);
                }
                continue;
            }
            if self.have == 0 && !self.started && matches!(data[at], b'N' | b'S' | b'G') {
                at += 1;
                continue;
            }
            self.header[self.have] = data[at];
            self.have += 1;
            at += 1;
            if self.have == 5 {
                self.started = true;
                self.have = 0;
                let length = u32::from_be_bytes(self.header[1..5].try_into().unwrap()) as usize;
                self.left = length.saturating_sub(4);
                if self.left == 0 && self.header[0] == b'Z' {
                    ends.push(at);
                }
            }
        }
    }
}

/// SO_LINGER with a zero timeout: closing the socket sends a reset instead of a FIN.
fn set_linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        onoff: i32,
        linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        onoff: 1,
        linger: 0,
    };
    // SAFETY: a valid socket descriptor and a pointer to a `struct linger` of the given size.
    unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        );
    }
}
