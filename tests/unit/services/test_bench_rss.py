"""RSS sampling from /proc for ``modelstream bench``."""

from __future__ import annotations

import os
import sys

import pytest

from services.bench import parse_vmrss
from services.bench._rss import RssSampler, rss_kb

STATUS = "Name:\tpython\nVmPeak:\t  900000 kB\nVmRSS:\t  123456 kB\nRssAnon:\t  1 kB\n"


def test_parse_vmrss_reads_the_rss_line_only() -> None:
    assert parse_vmrss(STATUS) == 123_456


def test_parse_vmrss_of_a_kernel_thread_is_none() -> None:
    assert parse_vmrss("Name:\tkthreadd\nState:\tS (sleeping)\n") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_rss_of_this_process_is_plausible() -> None:
    kb = rss_kb(os.getpid())
    assert kb is not None and 10_000 < kb < 10_000_000


def test_rss_of_a_process_that_is_gone_is_none() -> None:
    assert rss_kb(2**22 + 12345) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sampler_marks_and_summary() -> None:
    sampler = RssSampler(os.getpid(), interval=0.01)
    sampler.start()
    sampler.mark("ready")
    ballast = bytearray(64 * 1024 * 1024)  # touch 64 MB so the peak moves
    ballast[::4096] = b"x" * len(ballast[::4096])
    sampler.mark("warm")
    del ballast
    sampler.mark("end")
    sampler.stop()
    summary = sampler.summary()
    assert summary.samples >= 3
    assert summary.warm_mb - summary.start_mb > 50
    assert summary.peak_mb >= summary.warm_mb
    assert summary.growth_mb == summary.end_mb - summary.warm_mb


def test_summary_without_samples_says_so() -> None:
    with pytest.raises(ValueError, match="no RSS sample"):
        RssSampler(2**22 + 12345).summary()
