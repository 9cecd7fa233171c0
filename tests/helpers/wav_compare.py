#!/usr/bin/env python3
"""Compares a recording (16-bit PCM WAV) with the MP3 it was played from.

    wav_compare.py --ffmpeg FFMPEG --reference REF.mp3 --recording REC.wav

The reference is decoded with ffmpeg to float32 at the recording's sample rate and channel count.
The recording is a window somewhere inside the reference (played once, not looped): its offset is
found by FFT cross-correlation of the mono mixes, then the Pearson correlation of each channel is
computed over the aligned overlap. Prints one JSON line:

    {"correlation": min_over_channels, "per_channel": [...], "offset_frames": N,
     "frames": M, "rate": R, "channels": C}

`offset_frames` is where the recording's first frame lies in the reference (negative when the
recording starts before it), `frames` the length of the overlap. Exits 0 after printing, 2 with a
message on stderr for bad input.
"""

import argparse
import json
import subprocess
import sys
import wave

import numpy as np

# The overlap must cover at least this share of the shorter signal for an offset to count.
MIN_OVERLAP_SHARE = 0.5

# Shortest recording worth comparing, in seconds.
MIN_SECONDS = 0.05


class BadInput(Exception):
    """Input that cannot be compared; the message says why."""


def read_recording(path):
    """The WAV at `path` as (float64 array of shape (frames, channels) in [-1, 1), rate)."""
    try:
        with wave.open(path, "rb") as wav:
            if wav.getsampwidth() != 2:
                raise BadInput(f"{path}: {8 * wav.getsampwidth()}-bit samples, expected 16-bit PCM")
            channels, rate, frames = wav.getnchannels(), wav.getframerate(), wav.getnframes()
            data = wav.readframes(frames)
    except (OSError, EOFError, wave.Error) as err:
        raise BadInput(f"{path}: not a readable WAV file ({str(err) or type(err).__name__})") from err
    samples = np.frombuffer(data, dtype="<i2")
    usable = len(samples) - len(samples) % channels
    pcm = samples[:usable].reshape(-1, channels).astype(np.float64) / 32768.0
    if len(pcm) < MIN_SECONDS * rate:
        raise BadInput(f"{path}: only {len(pcm)} frames, too short to compare")
    return pcm, rate


def decode_reference(ffmpeg, path, rate, channels):
    """The MP3 at `path` decoded by ffmpeg, as float64 (frames, channels) at `rate`."""
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-f", "f32le", "-acodec", "pcm_f32le",
           "-ac", str(channels), "-ar", str(rate), "-"]
    try:
        run = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as err:
        raise BadInput(f"cannot run {ffmpeg}: {err}") from err
    if run.returncode != 0:
        raise BadInput(f"ffmpeg could not decode {path}: {run.stderr.decode(errors='replace').strip()}")
    samples = np.frombuffer(run.stdout, dtype="<f4")
    usable = len(samples) - len(samples) % channels
    pcm = samples[:usable].reshape(-1, channels).astype(np.float64)
    if len(pcm) == 0:
        raise BadInput(f"{path}: decoded to no audio")
    return pcm


def find_offset(reference, recording):
    """The offset k maximising sum(reference[n + k] * recording[n]) (mono signals), among the
    offsets whose overlap covers at least MIN_OVERLAP_SHARE of the shorter signal."""
    n_ref, n_rec = len(reference), len(recording)
    size = 1 << (n_ref + n_rec - 1).bit_length()
    spectrum = np.fft.rfft(reference, size) * np.conj(np.fft.rfft(recording, size))
    corr = np.fft.irfft(spectrum, size)
    # corr[k] for k >= 0 is offset k; corr[size - j] is offset -j.
    offsets = np.concatenate((np.arange(-(n_rec - 1), 0), np.arange(0, n_ref)))
    values = np.concatenate((corr[size - (n_rec - 1):], corr[:n_ref]))
    overlap = np.minimum(n_ref, offsets + n_rec) - np.maximum(0, offsets)
    values[overlap < MIN_OVERLAP_SHARE * min(n_ref, n_rec)] = -np.inf
    return int(offsets[int(np.argmax(values))])


def pearson(a, b):
    """Pearson correlation of two equally long signals (0 when either is constant)."""
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denominator) if denominator > 0 else 0.0


def compare(ffmpeg, reference_path, recording_path):
    """The result dictionary (see the module docs)."""
    recording, rate = read_recording(recording_path)
    channels = recording.shape[1]
    reference = decode_reference(ffmpeg, reference_path, rate, channels)
    offset = find_offset(reference.mean(axis=1), recording.mean(axis=1))
    ref_start, rec_start = max(0, offset), max(0, -offset)
    frames = min(len(reference) - ref_start, len(recording) - rec_start)
    ref = reference[ref_start:ref_start + frames]
    rec = recording[rec_start:rec_start + frames]
    per_channel = [pearson(ref[:, c], rec[:, c]) for c in range(channels)]
    return {
        "correlation": min(per_channel),
        "per_channel": per_channel,
        "offset_frames": offset,
        "frames": int(frames),
        "rate": rate,
        "channels": channels,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ffmpeg", required=True, help="the ffmpeg program")
    parser.add_argument("--reference", required=True, help="the MP3 that was played")
    parser.add_argument("--recording", required=True, help="the recording, a 16-bit PCM WAV")
    args = parser.parse_args()
    try:
        result = compare(args.ffmpeg, args.reference, args.recording)
    except BadInput as err:
        print(f"wav_compare: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
