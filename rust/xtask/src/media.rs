//! STUB (helper C writes it): test and demo audio generated with ffmpeg into target/media/.
