"""expect.same_bytes: payload comparisons that say where they differ, at once, even on CI;
expect.same_instances: retrieved instances judged as they come."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydicom import Dataset

from conformance import expect, samples

MEGABYTE = bytes(range(256)) * 4096


def test_equal_payloads_pass_and_a_pad_byte_is_allowed_only_when_asked() -> None:
    expect.same_bytes(MEGABYTE, bytes(MEGABYTE), "pixels")
    expect.same_bytes(MEGABYTE + b"\0", MEGABYTE, "pixels", padded=True)
    with pytest.raises(AssertionError, match="pixels: 1048577 bytes, expected 1048576"):
        expect.same_bytes(MEGABYTE + b"\0", MEGABYTE, "pixels")


def test_a_corrupted_byte_is_reported_with_its_offset_and_both_excerpts() -> None:
    corrupted = MEGABYTE[:1000] + b"\xff" + MEGABYTE[1001:]
    with pytest.raises(AssertionError) as raised:
        expect.same_bytes(corrupted, MEGABYTE, "frame 1")
    assert str(raised.value) == (
        "frame 1: 1048576 bytes, expected 1048576; they differ from offset 1000: "
        "got ff e9 ea eb ec ed ee ef f0 f1 f2 f3 f4 f5 f6 f7, "
        "expected e8 e9 ea eb ec ed ee ef f0 f1 f2 f3 f4 f5 f6 f7"
    )


def test_a_truncated_payload_differs_where_it_ends() -> None:
    with pytest.raises(AssertionError, match=r"differ from offset 5000: got \(end\), expected 88"):
        expect.same_bytes(MEGABYTE[:5000], MEGABYTE, "bulk data", padded=True)


def test_a_swapped_megabyte_fails_quickly_on_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CI set pytest does not truncate its explanations; ``assert got == want`` on this
    pair did not finish within a minute (CI ran it for over an hour). same_bytes explains it."""
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(
        """
        import random
        from conformance import expect

        def test_pixels():
            want = random.Random(0).randbytes(1 << 20)
            got = bytearray(want)
            got[0::2], got[1::2] = want[1::2], want[0::2]  # an endianness bug
            expect.same_bytes(bytes(got), want, "pixels")
        """
    )
    result = pytester.runpytest_subprocess(timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*pixels: 1048576 bytes, expected 1048576; they differ from offset 0*"]
    )


def test_same_instances_takes_the_retrieved_ones_as_they_come() -> None:
    """Each retrieved dataset is judged as it comes (a generator is not drained first): a
    repeated or unknown instance fails at once, a missing one at the end; the stored ones may
    be a mapping by SOP Instance UID that makes each when asked."""
    study = samples.load()
    red, green, blue = study.red, study.green, study.blue
    expect.same_instances((i.dataset for i in (red, green)), [green, red])
    expect.same_instances(iter([red.dataset]), {red.sop_uid: red})
    seen = []

    def retrieved() -> Iterator[Dataset]:
        for instance in (red, red, green):
            seen.append(instance.name)
            yield instance.dataset

    with pytest.raises(AssertionError, match="got"):
        expect.same_instances(retrieved(), [red, green])
    assert len(seen) == 2  # stopped at the repeat, without asking for the rest
    with pytest.raises(AssertionError, match="expected instances"):
        expect.same_instances(iter([red.dataset]), [red, blue])
    with pytest.raises(AssertionError, match="expected instances"):
        expect.same_instances(iter([blue.dataset]), [red])
