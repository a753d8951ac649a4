"""probekit's Kaldi fbank against torchaudio's (where torchaudio imports) and against the
definition's frame count."""

import numpy as np
import pytest
import torch

from probekit.audio import kaldi_fbank


def wave(seconds=1.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return torch.from_numpy((0.3 * np.sin(2 * np.pi * 440 * t)
                             + 0.05 * rng.standard_normal(t.size)).astype(np.float32)) * 2 ** 15


def test_frame_count_follows_25ms_windows_every_10ms():
    for seconds in (0.03, 1.0, 2.37):
        n = int(16000 * seconds)
        assert kaldi_fbank(wave(seconds)).shape == (1 + (n - 400) // 160, 80)
    assert kaldi_fbank(torch.zeros(100)).shape == (0, 80)


@pytest.mark.parametrize("bins", [80, 128])
def test_equals_torchaudio_kaldi_fbank(bins):
    torchaudio = pytest.importorskip("torchaudio", reason="torchaudio is the reference here")
    ref = torchaudio.compliance.kaldi.fbank(wave()[None], num_mel_bins=bins, sample_frequency=16000)
    got = kaldi_fbank(wave(), bins)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-3)
