//! The session loop against small real servers on loopback: audio reaches the PCM queue,
//! titles are reported once, a dropped stream is reconnected, a bad URL fails at once.

use std::{cell::RefCell, rc::Rc, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::LocalSet,
};

use super::run;
use crate::{
    radio::{PcmEvent, PcmQueue, RadioConfig, RadioHandler, RadioStats, StationInfo},
    state::NetState,
};

const MP3: &[u8] = include_bytes!("testdata/stereo_44k.mp3");
const METAINT: usize = 4000;

#[derive(Debug, Clone, PartialEq)]
enum Event {
    State(NetState),
    Connected(String),
    Title(String),
    Error(String),
}

#[derive(Clone, Default)]
struct Recorder(Rc<RefCell<Vec<Event>>>);

impl Recorder {
    fn events(&self) -> Vec<Event> {
        self.0.borrow().clone()
    }

    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.0.borrow().iter().filter(|e| f(e)).count()
    }
}

impl RadioHandler for Recorder {
    fn state_changed(&mut self, state: NetState) {
        self.0.borrow_mut().push(Event::State(state));
    }
    fn connected(&mut self, info: &StationInfo) {
        self.0.borrow_mut().push(Event::Connected(info.head.name.clone()));
    }
    fn title_changed(&mut self, title: &str) {
        self.0.borrow_mut().push(Event::Title(title.to_string()));
    }
    fn error(&mut self, message: &str) {
        self.0.borrow_mut().push(Event::Error(message.to_string()));
    }
}

/// `body` with an ICY metadata block carrying `title` every METAINT bytes.
fn interleave(body: &[u8], title: &str) -> Vec<u8> {
    let mut meta = format!("StreamTitle='{title}';").into_bytes();
    meta.resize(meta.len().div_ceil(16) * 16, 0);
    let mut out = Vec::new();
    for piece in body.chunks(METAINT) {
        out.extend_from_slice(piece);
        if piece.len() == METAINT {
            out.push((meta.len() / 16) as u8);
            out.extend_from_slice(&meta);
        }
    }
    out
}

/// Serves the fixture once per connection as an Icecast-style stream with metadata, then closes.
async fn station(listener: TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        tokio::task::spawn_local(async move {
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-name: Test FM\r\nicy-br: 64\r\nicy-metaint: {METAINT}\r\n\r\n"
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&interleave(MP3, "Song 'A'; live")).await;
        });
    }
}

fn config(url: String) -> RadioConfig {
    RadioConfig {
        url,
        reconnect_min: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(50),
        ..RadioConfig::default()
    }
}

/// Pops everything queued until `frames` frames came or the time is up; returns the count.
async fn drain(pcm: &PcmQueue, frames: usize, limit: Duration) -> usize {
    let start = std::time::Instant::now();
    let mut total = 0;
    while total < frames && start.elapsed() < limit {
        total += pcm.pop_with(usize::MAX, |_| {});
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    total
}

#[tokio::test(flavor = "current_thread")]
async fn streams_audio_reports_the_title_once_and_reconnects_when_the_stream_ends() {
    LocalSet::new()
        .run_until(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/stream.mp3", listener.local_addr().unwrap());
            tokio::task::spawn_local(station(listener));
            let pcm = PcmQueue::new(48_000);
            let recorder = Recorder::default();
            let stats = Arc::new(RadioStats::default());
            let session = tokio::task::spawn_local(run(config(url), pcm.clone(), recorder.clone(), stats.clone()));
            // The fixture is about 2 s of audio: two connections' worth comes through.
            let frames = drain(&pcm, 2 * 80_000, Duration::from_secs(20)).await;
            assert!(frames >= 2 * 80_000, "frames decoded: {frames}; events {:?}", recorder.events());
            assert!(stats.connects.get() >= 2, "reconnected after the stream ended");
            assert_eq!(recorder.count(|e| *e == Event::Title("Song 'A'; live".into())), 1, "{:?}", recorder.events());
            assert!(recorder.events().contains(&Event::Connected("Test FM".into())));
            assert!(recorder.count(|e| matches!(e, Event::Error(m) if m.contains("ended"))) >= 1);
            assert!(recorder.events().contains(&Event::State(NetState::Reconnecting)));
            let mut events = Vec::new();
            pcm.take_events(&mut events);
            assert!(
                events.iter().any(|e| matches!(e, PcmEvent::Format(f) if f.sample_rate == 44_100 && f.channels == 2)),
                "{events:?}"
            );
            session.abort();
            let _ = session.await;
            assert!(pcm.is_closed(), "ending the session closes the queue");
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_permanent_error_before_any_audio_fails_at_once() {
    LocalSet::new()
        .run_until(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/missing", listener.local_addr().unwrap());
            tokio::task::spawn_local(async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else { return };
                    let mut request = vec![0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let _ = socket.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
                }
            });
            let pcm = PcmQueue::new(4096);
            let recorder = Recorder::default();
            let limit = Duration::from_secs(10);
            tokio::time::timeout(limit, run(config(url), pcm.clone(), recorder.clone(), Arc::default()))
                .await
                .expect("the session ends by itself");
            let events = recorder.events();
            assert_eq!(events.last(), Some(&Event::State(NetState::Failed)), "{events:?}");
            assert!(recorder.count(|e| matches!(e, Event::Error(m) if m.contains("404"))) == 1, "{events:?}");
            assert!(pcm.is_closed());
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn closing_the_queue_stops_the_session() {
    LocalSet::new()
        .run_until(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/stream.mp3", listener.local_addr().unwrap());
            tokio::task::spawn_local(station(listener));
            let pcm: Arc<PcmQueue> = PcmQueue::new(1024);
            let recorder = Recorder::default();
            let session = tokio::task::spawn_local(run(config(url), pcm.clone(), recorder.clone(), Arc::default()));
            while pcm.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            pcm.close();
            tokio::time::timeout(Duration::from_secs(10), session).await.expect("the session ends").unwrap();
        })
        .await;
}

/// A handler that any thread may hold, and whose readiness the test opens and closes.
#[derive(Clone, Default)]
struct Gated(Arc<GatedInner>);

#[derive(Default)]
struct GatedInner {
    closed: std::sync::atomic::AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
    events: std::sync::Mutex<Vec<Event>>,
}

impl Gated {
    fn set_closed(&self, closed: bool) {
        self.0.closed.store(closed, std::sync::atomic::Ordering::SeqCst);
        if let Some(waker) = self.0.waker.lock().unwrap().take() {
            waker.wake();
        }
    }

    fn titles(&self) -> usize {
        self.0.events.lock().unwrap().iter().filter(|e| matches!(e, Event::Title(_))).count()
    }

    fn push(&self, event: Event) {
        self.0.events.lock().unwrap().push(event);
    }
}

impl RadioHandler for Gated {
    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.closed.load(std::sync::atomic::Ordering::SeqCst) {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    }
    fn state_changed(&mut self, state: NetState) {
        self.push(Event::State(state));
    }
    fn connected(&mut self, info: &StationInfo) {
        self.push(Event::Connected(format!("{} #{}", info.head.name, info.connection)));
    }
    fn title_changed(&mut self, title: &str) {
        self.push(Event::Title(title.to_string()));
    }
    fn error(&mut self, message: &str) {
        self.push(Event::Error(message.to_string()));
    }
}

/// Serves the fixture over and over on one connection, each metadata block with a new title.
async fn title_flood(listener: TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!("HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-metaint: {METAINT}\r\n\r\n");
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for round in 0.. {
                let mut out = Vec::new();
                for (i, piece) in MP3.chunks(METAINT).filter(|p| p.len() == METAINT).enumerate() {
                    out.extend_from_slice(piece);
                    let mut meta = format!("StreamTitle='Song {round}.{i}';").into_bytes();
                    meta.resize(meta.len().div_ceil(16) * 16, 0);
                    out.push((meta.len() / 16) as u8);
                    out.extend_from_slice(&meta);
                }
                if socket.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn runs_on_another_thread_and_a_handler_that_is_not_ready_holds_the_stream_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stream.mp3", listener.local_addr().unwrap());
    tokio::spawn(title_flood(listener));
    let pcm = PcmQueue::new(1_000_000);
    let handler = Gated::default();
    handler.set_closed(true);
    let stats = Arc::new(RadioStats::default());
    // tokio::spawn needs the session's future to be Send.
    let session = tokio::spawn(run(config(url), pcm.clone(), handler.clone(), stats.clone()));

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.bytes_received.get() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held = stats.bytes_received.get();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(held > 0, "the stream answered: {:?}", handler.0.events.lock().unwrap());
    assert_eq!(stats.bytes_received.get(), held, "nothing more is read while the handler is not ready");
    assert_eq!(handler.titles(), 0);

    handler.set_closed(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handler.titles() < 5 && std::time::Instant::now() < deadline {
        pcm.pop_with(usize::MAX, |_| {});
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(handler.titles() >= 5, "titles flow once the handler is ready: {}", handler.titles());
    assert!(stats.bytes_received.get() > held);
    assert!(handler.0.events.lock().unwrap().contains(&Event::Connected(" #1".into())));
    session.abort();
    let _ = session.await;
    assert!(pcm.is_closed(), "ending the session closes the queue");
}
