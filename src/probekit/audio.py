"""Audio features that do not need torchaudio (which has no working release for current torch):
Kaldi-compatible log-mel filterbanks, as ``torchaudio.compliance.kaldi.fbank`` computes them with
its defaults (25 ms Povey windows every 10 ms, DC removal, pre-emphasis 0.97, power spectrum,
no dithering, Kaldi mel scale from 20 Hz to Nyquist). The tests check equality with torchaudio."""

from __future__ import annotations

import math

import torch


def _mel(f: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def mel_banks(num_bins: int, n_fft: int, sample_rate: float, low: float = 20.0,
              high: float = 0.0) -> torch.Tensor:
    """``(num_bins, n_fft // 2)`` triangular filters in the Kaldi mel domain."""
    nyquist = 0.5 * sample_rate
    high = high if high > 0 else nyquist + high
    mel_low, mel_high = _mel(torch.tensor(low)), _mel(torch.tensor(high))
    delta = (mel_high - mel_low) / (num_bins + 1)
    edges = mel_low + delta * torch.arange(num_bins + 2, dtype=torch.float64)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    freqs = _mel(torch.arange(n_fft // 2, dtype=torch.float64) * sample_rate / n_fft)[None]
    up = (freqs - left) / (centre - left)
    down = (right - freqs) / (right - centre)
    return torch.clamp(torch.minimum(up, down), min=0.0)


def kaldi_fbank(wave: torch.Tensor, num_mel_bins: int = 80, sample_rate: float = 16000.0,
                frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0) -> torch.Tensor:
    """``(frames, num_mel_bins)`` log-mel energies of a 1-D wave (Kaldi scale: int16 range)."""
    wave = torch.as_tensor(wave, dtype=torch.float64).reshape(-1)
    length = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    if wave.numel() < length:
        return torch.zeros(0, num_mel_bins, dtype=torch.float32)
    frames = wave.unfold(0, length, shift)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - 0.97 * previous
    n = torch.arange(length, dtype=torch.float64)
    window = (0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))) ** 0.85
    n_fft = 1 << (length - 1).bit_length()
    spectrum = torch.fft.rfft(frames * window, n=n_fft).abs() ** 2
    energies = spectrum[:, :n_fft // 2] @ mel_banks(num_mel_bins, n_fft, sample_rate).T
    eps = torch.finfo(torch.float32).eps
    return torch.log(torch.clamp(energies, min=eps)).float()
