//! Tests of [`PcmQueue`]: bounded blocking, close, stereo conversion, events, recording.

use std::{
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use super::*;
use crate::radio::wav::parse_wav;

fn stereo(format_rate: u32, channels: u16) -> PcmFormat {
    PcmFormat { sample_rate: format_rate, channels, codec: Codec::Mp3 }
}

/// Pops everything queued.
fn drain(queue: &PcmQueue) -> Vec<[f32; 2]> {
    let mut out = Vec::new();
    queue.pop_with(usize::MAX, |s| out.extend_from_slice(s));
    out
}

fn events(queue: &PcmQueue) -> Vec<PcmEvent> {
    let mut out = Vec::new();
    queue.take_events(&mut out);
    out
}

fn temp_wav(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("async-net-pcm-{}-{name}.wav", std::process::id()))
}

/// Waits until `f` holds (or fails after 10 s).
fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn converts_to_stereo() {
    let queue = PcmQueue::new(100);
    let mut sink = queue.sink();
    assert!(sink.frames(&[0.1, 0.2], 1));
    assert!(sink.frames(&[0.3, 0.4, 0.5, 0.6], 2));
    assert!(sink.frames(&[0.7, 0.8, 0.9, 1.0, 1.1, 1.2], 3));
    assert_eq!(queue.len(), 6);
    assert_eq!(drain(&queue), [[0.1, 0.1], [0.2, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8], [1.0, 1.1]]);
    assert!(queue.is_empty());
    assert_eq!(queue.pop_with(10, |_| panic!("nothing to hand out")), 0);
}

#[test]
fn pop_hands_out_at_most_two_slices_in_order() {
    let queue = PcmQueue::new(8);
    let mut sink = queue.sink();
    let mut next = 0.0f32;
    let mut expected = 0.0f32;
    for round in 0..50 {
        let n = round % 5 + 1;
        let samples: Vec<f32> = (0..n)
            .flat_map(|_| {
                next += 1.0;
                [next, -next]
            })
            .collect();
        if queue.len() + n <= 8 {
            assert!(sink.frames(&samples, 2));
        } else {
            next -= n as f32;
        }
        let mut calls = 0;
        let popped = queue.pop_with(round % 4 + 1, |s| {
            calls += 1;
            assert!(!s.is_empty());
            for f in s {
                expected += 1.0;
                assert_eq!(*f, [expected, -expected]);
            }
        });
        assert!(calls <= 2);
        assert!(popped <= round % 4 + 1);
    }
}

#[test]
fn a_push_larger_than_capacity_goes_into_an_empty_queue() {
    let queue = PcmQueue::new(10);
    let mut sink = queue.sink();
    assert!(sink.frames(&[0.5; 50], 2));
    assert_eq!(queue.len(), 25);
}

#[test]
fn producer_blocks_while_full_until_frames_are_popped() {
    let queue = PcmQueue::new(1000);
    let producer = {
        let queue = queue.clone();
        thread::spawn(move || {
            let mut sink = queue.sink();
            for i in 0..3 {
                let samples: Vec<f32> = (0..1600).map(|j| (i * 1600 + j) as f32).collect();
                assert!(sink.frames(&samples, 2));
            }
        })
    };
    // 800 frames fit, then 200 of the next 800: the producer waits with the queue full.
    wait_until("the queue is full", || queue.len() == 1000);
    thread::sleep(Duration::from_millis(50));
    assert!(!producer.is_finished(), "the producer blocks while the queue is full");
    assert_eq!(queue.len(), 1000);

    let mut got = Vec::new();
    while got.len() < 2400 {
        if queue.pop_with(300, |s| got.extend_from_slice(s)) == 0 {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(queue.len() <= 1000);
    }
    producer.join().unwrap();
    for (i, f) in got.iter().enumerate() {
        assert_eq!(*f, [(2 * i) as f32, (2 * i + 1) as f32]);
    }
}

#[test]
fn close_wakes_a_blocked_producer() {
    let queue = PcmQueue::new(100);
    let producer = {
        let queue = queue.clone();
        thread::spawn(move || {
            let mut sink = queue.sink();
            assert!(sink.frames(&[0.0; 200], 2));
            let accepted = sink.frames(&[0.0; 200], 2);
            (accepted, sink.frames(&[0.0; 2], 2))
        })
    };
    wait_until("the queue is full", || queue.len() == 100);
    thread::sleep(Duration::from_millis(30));
    assert!(!producer.is_finished());
    queue.close();
    assert!(queue.is_closed());
    assert_eq!(producer.join().unwrap(), (false, false));
    assert!(queue.is_empty());
    let mut sink = queue.sink();
    assert!(!sink.frames(&[0.0; 2], 2), "after close, frames returns false at once");
}

#[test]
fn events_in_order_and_decode_errors_bounded() {
    let queue = PcmQueue::new(100);
    let mut sink = queue.sink();
    sink.format(stereo(44100, 2));
    for i in 0..150 {
        sink.decode_error(&format!("bad packet {i}"));
    }
    assert_eq!(queue.decode_errors(), 150);
    let got = events(&queue);
    assert_eq!(got.len(), 1 + MAX_PENDING_ERRORS + 1);
    assert_eq!(got[0], PcmEvent::Format(stereo(44100, 2)));
    assert_eq!(got[1], PcmEvent::DecodeError("bad packet 0".into()));
    assert_eq!(got[100], PcmEvent::DecodeError("bad packet 99".into()));
    assert_eq!(got[101], PcmEvent::DecodeError("50 more packet(s) could not be decoded".into()));
    assert!(events(&queue).is_empty());
    // The cap is per batch of pending events.
    sink.decode_error("again");
    assert_eq!(events(&queue), [PcmEvent::DecodeError("again".into())]);
    assert_eq!(queue.decode_errors(), 151);

    for rate in 0..(MAX_PENDING_FORMATS as u32 + 5) {
        sink.format(stereo(8000 + rate, 2));
    }
    let got = events(&queue);
    assert_eq!(got.len(), MAX_PENDING_FORMATS);
    assert_eq!(got.last(), Some(&PcmEvent::Format(stereo(8000 + MAX_PENDING_FORMATS as u32 + 4, 2))));
}

#[test]
fn records_the_stream_channels_to_wav() {
    let path = temp_wav("record");
    let queue = PcmQueue::new(10_000);
    let mut sink = queue.sink();
    sink.format(stereo(22050, 1));
    assert!(!queue.is_recording());
    assert_eq!(queue.stop_recording(), Ok(false));
    queue.start_recording(&path).unwrap();
    assert!(queue.is_recording());
    let samples: Vec<f32> = (0..1000).map(|i| (i as f32 / 500.0) - 1.0).collect();
    assert!(sink.frames(&samples, 1));
    assert!(sink.frames(&[2.0, -2.0], 1));
    assert_eq!(queue.stop_recording(), Ok(true));
    assert!(!queue.is_recording());
    // Not recorded after the stop.
    assert!(sink.frames(&[0.5; 10], 1));

    let wav = parse_wav(&std::fs::read(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert_eq!((wav.sample_rate, wav.channels, wav.samples.len()), (22050, 1, 1002));
    for (i, &s) in samples.iter().enumerate() {
        assert_eq!(wav.samples[i], (s * 32767.0).round() as i16);
    }
    assert_eq!(&wav.samples[1000..], &[32767, -32767]);
    // The queue itself got stereo frames.
    assert_eq!(queue.len(), 1012);
    assert!(events(&queue).iter().all(|e| matches!(e, PcmEvent::Format(_))));
}

#[test]
fn recording_started_before_the_format_waits_for_it() {
    let path = temp_wav("pending");
    let queue = PcmQueue::new(10_000);
    let mut sink = queue.sink();
    queue.start_recording(&path).unwrap();
    assert!(queue.is_recording());
    assert!(path.exists(), "the file is created right away");
    sink.format(stereo(48000, 2));
    assert!(sink.frames(&[0.25, -0.25, 0.5, -0.5], 2));
    queue.stop_recording().unwrap();
    let wav = parse_wav(&std::fs::read(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert_eq!((wav.sample_rate, wav.channels), (48000, 2));
    assert_eq!(wav.samples, [8192, -8192, 16384, -16384]);

    // Stopped before any format: no file is left.
    queue.start_recording(&path).unwrap();
    let fresh = PcmQueue::new(10);
    fresh.start_recording(&path).unwrap();
    assert_eq!(fresh.stop_recording(), Ok(true));
    assert!(!path.exists());
    queue.stop_recording().unwrap();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn format_change_finishes_the_recording() {
    let path = temp_wav("format-change");
    let queue = PcmQueue::new(10_000);
    let mut sink = queue.sink();
    sink.format(stereo(44100, 2));
    queue.start_recording(&path).unwrap();
    assert!(sink.frames(&[0.5; 200], 2));
    sink.format(stereo(22050, 1));
    assert!(!queue.is_recording());
    assert!(sink.frames(&[0.5; 50], 1));
    let got = events(&queue);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], PcmEvent::Format(stereo(22050, 1)));
    let PcmEvent::RecordingStopped(reason) = &got[2] else { panic!("{got:?}") };
    assert!(reason.contains("format changed"), "{reason}");
    assert_eq!(queue.stop_recording(), Ok(false));

    let wav = parse_wav(&std::fs::read(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert_eq!((wav.sample_rate, wav.channels, wav.samples.len()), (44100, 2, 200));
}

#[test]
fn format_change_before_any_audio_restarts_the_file() {
    let path = temp_wav("restart");
    let queue = PcmQueue::new(10_000);
    let mut sink = queue.sink();
    sink.format(stereo(44100, 2));
    queue.start_recording(&path).unwrap();
    // A new connection with another format, before any audio was recorded.
    sink.format(stereo(32000, 1));
    assert!(queue.is_recording());
    assert!(sink.frames(&[0.5; 10], 1));
    queue.stop_recording().unwrap();
    let wav = parse_wav(&std::fs::read(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert_eq!((wav.sample_rate, wav.channels, wav.samples.len()), (32000, 1, 10));
    assert!(events(&queue).iter().all(|e| matches!(e, PcmEvent::Format(_))));
}

#[test]
fn start_recording_reports_a_bad_path() {
    let queue = PcmQueue::new(10);
    let err = queue.start_recording(&std::env::temp_dir().join("async-net-missing-dir-77/x.wav")).unwrap_err();
    assert!(err.contains("cannot create"), "{err}");
    assert!(!queue.is_recording());
    queue.sink().format(stereo(44100, 2));
    assert!(queue.start_recording(&std::env::temp_dir().join("async-net-missing-dir-77/x.wav")).is_err());
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_stops_the_recording() {
    let queue = PcmQueue::new(1_000_000);
    let mut sink = queue.sink();
    sink.format(stereo(44100, 2));
    // Every write to /dev/full fails (ENOSPC), once the 64 KiB buffer is flushed.
    queue.start_recording(std::path::Path::new("/dev/full")).unwrap();
    for _ in 0..20 {
        assert!(sink.frames(&[0.1; 4000], 2), "the queue goes on");
    }
    assert!(!queue.is_recording());
    let got = events(&queue);
    let stopped: Vec<_> = got.iter().filter(|e| matches!(e, PcmEvent::RecordingStopped(_))).collect();
    assert_eq!(stopped.len(), 1, "{got:?}");
    assert_eq!(queue.len(), 40_000);
}

#[test]
fn replacing_a_recording_finishes_the_first() {
    let (a, b) = (temp_wav("first"), temp_wav("second"));
    let queue = PcmQueue::new(10_000);
    let mut sink = queue.sink();
    sink.format(stereo(44100, 2));
    queue.start_recording(&a).unwrap();
    assert!(sink.frames(&[0.5; 20], 2));
    queue.start_recording(&b).unwrap();
    assert!(sink.frames(&[0.5; 40], 2));
    queue.stop_recording().unwrap();
    let (wa, wb) = (parse_wav(&std::fs::read(&a).unwrap()), parse_wav(&std::fs::read(&b).unwrap()));
    std::fs::remove_file(&a).unwrap();
    std::fs::remove_file(&b).unwrap();
    assert_eq!((wa.samples.len(), wb.samples.len()), (20, 40));
}

#[test]
fn the_lock_free_length_and_event_flag_follow_the_queue() {
    let queue = PcmQueue::new(100);
    let mut sink = queue.sink();
    assert_eq!(queue.len(), 0);
    assert!(events(&queue).is_empty(), "nothing waits");
    sink.format(stereo(44_100, 2));
    assert!(sink.frames(&[0.1; 20], 2));
    assert_eq!(queue.len(), 10);
    assert_eq!(queue.pop_with(4, |_| {}), 4);
    assert_eq!(queue.len(), 6);
    assert_eq!(events(&queue), [PcmEvent::Format(stereo(44_100, 2))]);
    assert!(events(&queue).is_empty(), "taken once");
    sink.decode_error("bad packet");
    assert_eq!(events(&queue), [PcmEvent::DecodeError("bad packet".into())]);
    queue.close();
    assert_eq!(queue.len(), 0, "closing drops the frames");
}
