//! STUB (helper C writes it): the local internet-radio station (ICY metadata, real-time pacing).
