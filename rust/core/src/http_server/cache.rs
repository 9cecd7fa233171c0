//! The micro-cache of `route(..., {"cache_sec": s})`: a 2xx answer a GET
//! handler returned is kept on the I/O worker for `s` seconds, keyed by the
//! request's path and query, and the requests of that window are answered
//! from it without waiting for a frame (nginx's `proxy_cache_valid` with
//! `proxy_cache_lock`). While a handler makes an answer, further requests for
//! the same key wait for it instead of each running the handler; when that
//! answer is not kept (not 2xx, a stream, a `Set-Cookie`), or its request is
//! gone, each waiting request runs the handler itself, at once, so refusals
//! are never serialized behind one another.
//!
//! Hand-written rather than `moka`: what is needed besides a bounded map is
//! the hand-over above (a waiter must not become the next one to wait for a
//! handler whose answer is never kept), which a general cache's coalescing
//! does not give; the map is small and scanned only when a bound is reached.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use hyper::{
    HeaderMap, Response, StatusCode,
    header::{self, HeaderValue},
};
use tokio::sync::watch;

use super::{answer::Body, router::RouteId};

/// How much one server keeps at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheBounds {
    /// Kept answers at once; past it, the answers nearest to expiring go first.
    pub max_entries: usize,
    /// Bytes of kept bodies and headers at once; an answer larger than a
    /// quarter of it is not kept.
    pub max_bytes: usize,
}

impl Default for CacheBounds {
    fn default() -> Self {
        CacheBounds { max_entries: 1024, max_bytes: 16 * 1024 * 1024 }
    }
}

/// A kept answer, ready to be sent again.
#[derive(Debug)]
pub struct Kept {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    route: RouteId,
    stored: Instant,
    expires: Instant,
    /// Body and header bytes, counted against [`CacheBounds::max_bytes`].
    size: usize,
}

impl Kept {
    /// An answer to keep for `keep`, made by `route`'s handler.
    pub fn new(route: RouteId, keep: Duration, status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        let stored = Instant::now();
        let size =
            body.len() + headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum::<usize>() + 64;
        Kept { status, headers, body, route, stored, expires: stored + keep, size }
    }

    /// The response for one request, with its `Age` (whole seconds kept).
    pub fn response(&self) -> Response<Body> {
        let mut response = Response::new(super::files::full(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.clone_from(&self.headers);
        headers.insert(header::AGE, HeaderValue::from(self.stored.elapsed().as_secs()));
        response
    }

    fn fresh(&self, now: Instant) -> bool {
        now < self.expires
    }
}

/// Whether an answer may be kept at all: 2xx, and nothing in its headers
/// that belongs to one client (`Set-Cookie`) or forbids it (`Cache-Control:
/// no-store` or `private`).
pub fn keepable(status: StatusCode, headers: &HeaderMap) -> bool {
    status.is_success()
        && !headers.contains_key(header::SET_COOKIE)
        && !headers.get_all(header::CACHE_CONTROL).iter().any(|value| {
            let value = String::from_utf8_lossy(value.as_bytes()).to_ascii_lowercase();
            value.split(',').any(|d| matches!(d.trim(), "no-store" | "private"))
        })
}

/// What a request's handler made, as those waiting for it learn it.
#[derive(Clone)]
enum Outcome {
    Making,
    Kept(Arc<Kept>),
    /// Not kept (or the request went away): each waiting request runs the handler.
    NotKept,
}

/// Short: a kept answer's bytes have no place in a debug line.
impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Making => "Making",
            Outcome::Kept(_) => "Kept",
            Outcome::NotKept => "NotKept",
        })
    }
}

/// What [`AnswerCache::lookup`] found for a key.
pub enum Lookup {
    /// A fresh kept answer.
    Hit(Arc<Kept>),
    /// Another request's handler is making the answer: wait for it.
    Wait(Waiter),
    /// Nothing: this request runs the handler; its answer goes to [`Lease::finish`].
    Lead(Lease),
}

/// A request waiting for another one's answer.
pub struct Waiter {
    outcome: watch::Receiver<Outcome>,
    cache: Arc<AnswerCache>,
}

impl Waiter {
    /// The kept answer, or `None` when the request must run the handler itself.
    pub async fn answer(mut self) -> Option<Arc<Kept>> {
        let outcome = self.outcome.wait_for(|outcome| !matches!(outcome, Outcome::Making)).await;
        let kept = match outcome.as_deref() {
            Ok(Outcome::Kept(kept)) => Some(kept.clone()),
            _ => None,
        };
        if kept.is_some() {
            self.cache.hits.fetch_add(1, Relaxed);
        }
        kept
    }
}

/// The right to make the answer for a key; dropped without [`finish`](Self::finish)
/// (the request timed out or its client left), the waiting requests run the handler.
pub struct Lease {
    cache: Arc<AnswerCache>,
    key: String,
    ticket: u64,
    generation: u64,
    sender: watch::Sender<Outcome>,
}

impl Lease {
    /// Keeps `kept` (unless the cache was cleared since the lease began, or
    /// it is too large) and hands it to the waiting requests.
    pub fn finish(self, kept: Option<Kept>) {
        let kept = kept.map(Arc::new);
        if let Some(kept) = &kept {
            self.cache.store(&self.key, kept.clone(), self.generation);
        }
        // Waiters get the answer even when it was not stored: they asked before any clear.
        self.sender.send_replace(kept.map_or(Outcome::NotKept, Outcome::Kept));
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.sender.send_if_modified(|outcome| {
            let making = matches!(outcome, Outcome::Making);
            if making {
                *outcome = Outcome::NotKept;
            }
            making
        });
        let mut inner = self.cache.lock();
        if inner.pending.get(&self.key).is_some_and(|(ticket, _)| *ticket == self.ticket) {
            inner.pending.remove(&self.key);
        }
    }
}

/// The kept answers of one running server.
#[derive(Debug, Default)]
pub struct AnswerCache {
    bounds: CacheBounds,
    inner: Mutex<Inner>,
    /// Bumped by every clear: an answer begun before it is not kept.
    generation: AtomicU64,
    /// Requests answered from a kept answer (found fresh, or waited for).
    hits: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    kept: HashMap<String, Arc<Kept>>,
    /// Keys whose answer a handler is making: the lease's ticket and what waiters watch.
    pending: HashMap<String, (u64, watch::Receiver<Outcome>)>,
    bytes: usize,
    next_ticket: u64,
}

/// What [`AnswerCache::usage`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUsage {
    /// Answers kept now (expired ones included until they are replaced or pushed out).
    pub entries: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Requests answered from kept answers since the start.
    pub hits: u64,
}

impl AnswerCache {
    /// An empty cache within `bounds`.
    pub fn new(bounds: CacheBounds) -> Self {
        AnswerCache { bounds, ..Default::default() }
    }

    /// The kept answer for `key` if fresh; else the answer being made, or
    /// the lease to make it.
    pub fn lookup(self: &Arc<Self>, key: &str) -> Lookup {
        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(kept) = inner.kept.get(key)
            && kept.fresh(now)
        {
            self.hits.fetch_add(1, Relaxed);
            return Lookup::Hit(kept.clone());
        }
        if let Some((_, receiver)) = inner.pending.get(key) {
            return Lookup::Wait(Waiter { outcome: receiver.clone(), cache: self.clone() });
        }
        inner.next_ticket += 1;
        let ticket = inner.next_ticket;
        let (sender, receiver) = watch::channel(Outcome::Making);
        inner.pending.insert(key.to_string(), (ticket, receiver));
        Lookup::Lead(Lease {
            cache: self.clone(),
            key: key.to_string(),
            ticket,
            generation: self.generation.load(Relaxed),
            sender,
        })
    }

    /// The kept answer for `key` if fresh (HEAD: it never makes one).
    pub fn fresh(&self, key: &str) -> Option<Arc<Kept>> {
        let kept = self.lock().kept.get(key).filter(|kept| kept.fresh(Instant::now())).cloned();
        if kept.is_some() {
            self.hits.fetch_add(1, Relaxed);
        }
        kept
    }

    /// Drops the kept answers of `routes` (all when `None`) and lets the
    /// answers being made now go unkept; how many were dropped.
    pub fn clear(&self, routes: Option<&[RouteId]>) -> usize {
        let mut inner = self.lock();
        self.generation.fetch_add(1, Relaxed);
        let before = inner.kept.len();
        match routes {
            None => inner.kept.clear(),
            Some(routes) => inner.kept.retain(|_, kept| !routes.contains(&kept.route)),
        }
        inner.bytes = inner.bytes_now();
        // Requests arriving from now on make a new answer rather than wait for an old one.
        inner.pending.clear();
        before - inner.kept.len()
    }

    /// Entries, bytes and hits now.
    pub fn usage(&self) -> CacheUsage {
        let inner = self.lock();
        CacheUsage { entries: inner.kept.len(), bytes: inner.bytes, hits: self.hits.load(Relaxed) }
    }

    /// Keeps `kept` under `key` within the bounds, unless it is too large or
    /// the cache was cleared since `generation`.
    fn store(&self, key: &str, kept: Arc<Kept>, generation: u64) {
        let bounds = self.bounds;
        if kept.size > bounds.max_bytes / 4 || bounds.max_entries == 0 {
            return;
        }
        let mut inner = self.lock();
        if self.generation.load(Relaxed) != generation {
            return;
        }
        if let Some(old) = inner.kept.remove(key) {
            inner.bytes -= old.size;
        }
        if inner.kept.len() >= bounds.max_entries || inner.bytes + kept.size > bounds.max_bytes {
            inner.make_room(&bounds, kept.size);
        }
        inner.bytes += kept.size;
        inner.kept.insert(key.to_string(), kept);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// Drops expired answers, then those nearest to expiring, until one of
    /// `size` bytes fits. A scan of at most `max_entries`, only at a bound.
    fn make_room(&mut self, bounds: &CacheBounds, size: usize) {
        let now = Instant::now();
        self.kept.retain(|_, kept| kept.fresh(now));
        if self.kept.len() >= bounds.max_entries || self.bytes_now() + size > bounds.max_bytes {
            let mut by_expiry: Vec<(Instant, String)> =
                self.kept.iter().map(|(key, kept)| (kept.expires, key.clone())).collect();
            by_expiry.sort_unstable();
            let mut bytes = self.bytes_now();
            let mut entries = self.kept.len();
            for (_, key) in by_expiry {
                if entries < bounds.max_entries && bytes + size <= bounds.max_bytes {
                    break;
                }
                if let Some(old) = self.kept.remove(&key) {
                    bytes -= old.size;
                    entries -= 1;
                }
            }
        }
        self.bytes = self.bytes_now();
    }

    fn bytes_now(&self) -> usize {
        self.kept.values().map(|kept| kept.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(route: RouteId, keep_ms: u64, body: &str) -> Kept {
        Kept::new(
            route,
            Duration::from_millis(keep_ms),
            StatusCode::OK,
            HeaderMap::new(),
            Bytes::from(body.to_string()),
        )
    }

    fn lead(cache: &Arc<AnswerCache>, key: &str) -> Lease {
        match cache.lookup(key) {
            Lookup::Lead(lease) => lease,
            _ => panic!("{key}: expected to lead"),
        }
    }

    fn hit(cache: &Arc<AnswerCache>, key: &str) -> Option<Bytes> {
        match cache.lookup(key) {
            Lookup::Hit(kept) => Some(kept.body.clone()),
            _ => None,
        }
    }

    #[test]
    fn an_answer_is_kept_for_its_window_then_made_again() {
        let cache = Arc::new(AnswerCache::new(CacheBounds::default()));
        lead(&cache, "/s?a=1").finish(Some(kept(1, 100, "one")));
        assert_eq!(hit(&cache, "/s?a=1").as_deref(), Some(&b"one"[..]));
        assert!(matches!(cache.lookup("/s?a=2"), Lookup::Lead(_)), "another query is another key");
        std::thread::sleep(Duration::from_millis(120));
        let lease = lead(&cache, "/s?a=1");
        lease.finish(Some(kept(1, 100, "two")));
        assert_eq!(hit(&cache, "/s?a=1").as_deref(), Some(&b"two"[..]));
        assert_eq!(cache.usage().hits, 2);
        assert_eq!(cache.usage().entries, 1);
    }

    #[tokio::test]
    async fn waiters_get_the_answer_being_made_or_run_the_handler_themselves() {
        let cache = Arc::new(AnswerCache::new(CacheBounds::default()));
        let lease = lead(&cache, "/s");
        let waiters: Vec<Waiter> = (0..10)
            .map(|_| match cache.lookup("/s") {
                Lookup::Wait(waiter) => waiter,
                _ => panic!("expected to wait"),
            })
            .collect();
        lease.finish(Some(kept(1, 1000, "made")));
        for waiter in waiters {
            assert_eq!(waiter.answer().await.map(|k| k.body.clone()).as_deref(), Some(&b"made"[..]));
        }
        // Not kept (a 404, say): the waiters are released to run the handler, and nothing is kept.
        let lease = lead(&cache, "/missing");
        let Lookup::Wait(waiter) = cache.lookup("/missing") else { panic!("expected to wait") };
        lease.finish(None);
        assert!(waiter.answer().await.is_none());
        assert!(matches!(cache.lookup("/missing"), Lookup::Lead(_)));
        // The request making it went away: the same.
        let lease = lead(&cache, "/gone");
        let Lookup::Wait(waiter) = cache.lookup("/gone") else { panic!("expected to wait") };
        drop(lease);
        assert!(waiter.answer().await.is_none());
        assert!(matches!(cache.lookup("/gone"), Lookup::Lead(_)), "no key stays pending");
    }

    #[test]
    fn clear_drops_a_routes_answers_and_the_answers_being_made() {
        let cache = Arc::new(AnswerCache::new(CacheBounds::default()));
        lead(&cache, "/a").finish(Some(kept(1, 1000, "a")));
        lead(&cache, "/b").finish(Some(kept(2, 1000, "b")));
        let making = lead(&cache, "/c");
        assert_eq!(cache.clear(Some(&[1])), 1);
        assert!(hit(&cache, "/a").is_none() && hit(&cache, "/b").is_some());
        making.finish(Some(kept(3, 1000, "c")));
        assert!(hit(&cache, "/c").is_none(), "begun before the clear: not kept");
        assert_eq!(cache.clear(None), 1);
        assert_eq!(cache.usage(), CacheUsage { entries: 0, bytes: 0, hits: 1 });
    }

    #[test]
    fn the_bounds_hold_and_the_nearest_to_expire_go_first() {
        let bounds = CacheBounds { max_entries: 3, max_bytes: 4096 };
        let cache = Arc::new(AnswerCache::new(bounds));
        for (key, keep) in [("/long", 5000), ("/short", 1000), ("/mid", 3000), ("/new", 4000)] {
            lead(&cache, key).finish(Some(kept(1, keep, "x")));
        }
        assert_eq!(cache.usage().entries, 3);
        assert!(hit(&cache, "/short").is_none(), "the nearest to expiring went");
        assert!(hit(&cache, "/long").is_some() && hit(&cache, "/new").is_some());
        // Bytes: 1000-byte bodies in 4096 bytes; one over a quarter of it is never kept.
        let cache = Arc::new(AnswerCache::new(CacheBounds { max_entries: 100, max_bytes: 4096 }));
        for i in 0..10 {
            lead(&cache, &format!("/{i}")).finish(Some(kept(1, 1000 + i, &"y".repeat(900))));
            assert!(cache.usage().bytes <= 4096, "{:?}", cache.usage());
        }
        assert_eq!(cache.usage().entries, 4);
        lead(&cache, "/big").finish(Some(kept(1, 1000, &"z".repeat(1100))));
        assert!(hit(&cache, "/big").is_none());
    }

    #[test]
    fn answers_for_one_client_or_not_2xx_are_not_keepable() {
        let with = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HeaderName::try_from(name).unwrap(), HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(keepable(StatusCode::OK, &HeaderMap::new()));
        assert!(keepable(StatusCode::OK, &with("cache-control", "max-age=1")));
        assert!(!keepable(StatusCode::NOT_FOUND, &HeaderMap::new()));
        assert!(!keepable(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new()));
        assert!(!keepable(StatusCode::OK, &with("set-cookie", "a=1")));
        assert!(!keepable(StatusCode::OK, &with("cache-control", "max-age=0, No-Store")));
        assert!(!keepable(StatusCode::OK, &with("cache-control", "private")));
    }

    #[test]
    fn a_kept_answer_says_its_age() {
        let response = kept(1, 1000, "x").response();
        assert_eq!(response.headers().get(header::AGE).unwrap(), "0");
    }
}
